#!/usr/bin/env node
// Dev-only: render a `.cpuprofile` (what `node --cpu-prof` writes) as a PNG of Chrome DevTools'
// Performance panel — the flame chart on top, the Call tree opened along its heaviest path below —
// for pictures in the README.
//
//   node scripts/profile-picture.mjs <in.cpuprofile> <out.png>
//
// Needs two things that are NOT dependencies of this package (a browser must never come with
// `npm install` of the package or of CI):
//   - Chromium from Debian:  apt-get update && apt-get install -y chromium
//     (CHROMIUM_PATH overrides /usr/bin/chromium)
//   - puppeteer-core from npm, in a folder of its own:
//       mkdir -p /tmp/devtools-shot && cd /tmp/devtools-shot && npm init -y && npm install puppeteer-core
//     and PROFILE_PICTURE_MODULES pointing at that folder's node_modules:
//       PROFILE_PICTURE_MODULES=/tmp/devtools-shot/node_modules node scripts/profile-picture.mjs in.cpuprofile out.png
//
// Optional: PROFILE_PICTURE_SIZE=1400x800 (the window, in CSS pixels), PROFILE_PICTURE_SCALE=1 (2 gives
// a sharper picture on high-DPI screens, twice as many pixels), PROFILE_PICTURE_TAB=call-tree (or
// bottom-up, summary, event-log: the details tab under the flame chart).
//
// How: Chromium serves its own bundled DevTools frontend at http://127.0.0.1:<debugging port>/devtools/.
// The script opens that frontend attached to a blank tab and hands the profile to the Performance
// panel's "Load trace…" file input, as a person picking the file would. The picture is what DevTools
// draws, its quirks included: the DevTools of Chromium 156 nests some back-to-back calls of a
// .cpuprofile inside each other in its Call tree and Bottom-up (a `hot` under the `cold` that ran
// right after it, sometimes negative self times); the flame chart above them is right.
import { existsSync, mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

const [input, output] = process.argv.slice(2)
if (!input || !output) {
  console.error('usage: node scripts/profile-picture.mjs <in.cpuprofile> <out.png>')
  process.exit(2)
}
if (!existsSync(input)) {
  console.error(`no such profile: ${input}`)
  process.exit(2)
}
const chromium = process.env.CHROMIUM_PATH || '/usr/bin/chromium'
if (!existsSync(chromium)) {
  console.error(`no Chromium at ${chromium}: apt-get update && apt-get install -y chromium (or set CHROMIUM_PATH)`)
  process.exit(2)
}
const [width, height] = (process.env.PROFILE_PICTURE_SIZE || '1400x800').split('x').map(Number)
const scale = Number(process.env.PROFILE_PICTURE_SCALE || 1)
// The details tabs under the flame chart, by the ids DevTools gives their headers (`tab-<id>`).
const TABS = { 'call-tree': 'call-tree', 'bottom-up': 'bottom-up', summary: 'details', 'event-log': 'event-log' }
const tab = process.env.PROFILE_PICTURE_TAB || 'call-tree'
if (!(tab in TABS)) {
  console.error(`PROFILE_PICTURE_TAB must be one of ${Object.keys(TABS).join(', ')}`)
  process.exit(2)
}
// Each wait has this bound, so a profile that DevTools refuses (it shows an error dialog instead of
// the flame chart) fails the script instead of hanging it.
const TIMEOUT_MS = 60_000

const puppeteer = await loadPuppeteer()
const browser = await puppeteer.launch({
  executablePath: chromium,
  // Puppeteer's `true` is Chrome's "new" headless mode, the full browser, which serves the bundled
  // DevTools frontend; the old headless shell does not ship it.
  headless: true,
  // Port 0: Chromium picks a free port, read back from the WebSocket endpoint below.
  // --no-sandbox: Chromium's sandbox refuses to start as root, which is how this machine runs.
  args: ['--remote-debugging-port=0', '--no-sandbox'],
  defaultViewport: { width, height, deviceScaleFactor: scale },
})
try {
  const debugHost = new URL(browser.wsEndpoint()).host
  // The frontend wants a target to connect to before its panels work; the blank tab Chromium
  // starts with will do, and its target id is what the frontend's `ws=` parameter names.
  const [blank] = await browser.pages()
  const session = await blank.createCDPSession()
  const { targetInfo } = await session.send('Target.getTargetInfo')
  await session.detach()

  const devtools = await browser.newPage()
  devtools.setDefaultTimeout(TIMEOUT_MS)
  // Every launch has a fresh profile directory, so DevTools would greet us with its first-run
  // chrome: the Insights sidebar and a keyboard-shortcuts popup over the flame chart. These are its
  // own settings (kept in localStorage when the frontend is served over http) saying both were seen,
  // plus the split between flame chart and details, so the picture is the same on every run.
  await devtools.evaluateOnNewDocument(
    (detailsHeight) => {
      localStorage.setItem(
        'timeline-panel-sidebar-state',
        JSON.stringify({ vertical: { size: 0, showMode: 'OnlyMain' } }),
      )
      localStorage.setItem('timeline-sidebar-opened-at-least-once', 'true')
      localStorage.setItem('timeline.user-had-shortcuts-dialog-opened-once', 'true')
      localStorage.setItem(
        'timeline-panel-details-split-view-state',
        JSON.stringify({ horizontal: { size: detailsHeight } }),
      )
    },
    Math.round(height * 0.45),
  )
  // `panel=timeline` opens DevTools straight on the Performance panel.
  await devtools.goto(
    `http://${debugHost}/devtools/devtools_app.html?ws=${debugHost}/devtools/page/${targetInfo.targetId}&panel=timeline`,
  )
  // The panel's hidden file input, the one behind "Load trace…"; `>>>` looks through shadow roots,
  // and the accept filter keeps us off any other panel's input. uploadFile goes through CDP's
  // DOM.setFileInputFiles with the path, so the size of the profile does not matter.
  const fileInput = await devtools.waitForSelector('>>> input[type=file][accept*=".cpuprofile"]')
  await fileInput.uploadFile(resolve(input))

  // The details tabs only exist once a trace is shown, so they mark the end of loading.
  await devtools.waitForSelector('>>> #tab-bottom-up', { visible: true })
  const tabHeader = await devtools.$(`>>> #tab-${TABS[tab]}`)
  // In case DevTools renames the setting above: this popup is the only thing with a plain "Close"
  // button (tabs say "Close Security" and so on). Escape would not do: it opens the console drawer.
  const close = await devtools.$('>>> button[aria-label="Close"]')
  if (close && (await close.isVisible())) await close.click()
  await tabHeader.click()
  if (tab === 'call-tree' || tab === 'bottom-up') await openHeaviestPath(devtools)
  // Park the mouse on the empty end of the tab strip: a pointer left over a row or the flame chart
  // would highlight it and grey out the rest of the flame chart.
  const strip = await tabHeader.boundingBox()
  await devtools.mouse.move(width - 50, strip.y + strip.height / 2)
  // The flame chart is a canvas redrawn on animation frames after the layout changes above.
  await devtools.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))))
  await new Promise((done) => setTimeout(done, 500))
  // docs/ may not exist yet when the first picture is made.
  mkdirSync(dirname(resolve(output)), { recursive: true })
  await devtools.screenshot({ path: output })
  console.log(`wrote ${output}`)
} finally {
  await browser.close()
}

// Opens the first row of the tree, then its first child, and so on while they have children and fit
// on screen: the tree is sorted heaviest first, so this is the path a person would open by hand.
// It clicks the disclosure triangles rather than the rows, because selecting a row greys out
// everything else in the flame chart.
async function openHeaviestPath(page) {
  let row = await page.waitForSelector('>>> tr.data-grid-data-grid-node', { visible: true })
  for (let step = 0; row && step < 50; step++) {
    // The first time this is the top row; after that, the first child of the row just opened.
    row = (await row.evaluateHandle(firstClosedOnPath)).asElement()
    const triangle = await row.evaluate((tr) => {
      const cell = tr.querySelector('td.disclosure')
      const box = tr.getBoundingClientRect()
      if (!cell || !tr.classList.contains('parent') || tr.classList.contains('expanded')) return null
      if (box.bottom > innerHeight - box.height) return null
      // DevTools takes a click as a toggle when it lands within 10px right of the cell's left edge
      // plus the row's indentation, which it sets as the cell's inline padding-left.
      const x = cell.getBoundingClientRect().left + parseFloat(cell.style.paddingLeft || '0') + 5
      return { x, y: box.top + box.height / 2 }
    })
    if (!triangle) return
    await page.mouse.click(triangle.x, triangle.y)
    await row.evaluate(settled)
  }

  // An open row's first child is the row right after it, one indentation step deeper.
  function firstClosedOnPath(tr) {
    const indent = (row) => parseFloat(row.querySelector('td.disclosure')?.style.paddingLeft || '0')
    while (tr.classList.contains('expanded') && tr.nextElementSibling && indent(tr.nextElementSibling) > indent(tr)) {
      tr = tr.nextElementSibling
    }
    return tr
  }

  // The children rows appear a little after the click; wait for the first of them (at most about
  // three seconds, so a click that missed leaves the tree as it is rather than hanging).
  function settled(tr) {
    const indent = (row) => parseFloat(row.querySelector('td.disclosure')?.style.paddingLeft || '0')
    const open = () =>
      tr.classList.contains('expanded') && tr.nextElementSibling && indent(tr.nextElementSibling) > indent(tr)
    return new Promise((done) => {
      const started = Date.now()
      const poll = () => (open() || Date.now() - started > 3000 ? done() : setTimeout(poll, 20))
      poll()
    })
  }
}

async function loadPuppeteer() {
  const dir = process.env.PROFILE_PICTURE_MODULES
  if (dir) {
    // Resolve as if from a file inside that folder, so Node's usual lookup finds the package there,
    // never in this repo's node_modules.
    const require = createRequire(join(resolve(dir), 'noop.js'))
    try {
      const mod = await import(pathToFileURL(require.resolve('puppeteer-core')).href)
      return mod.default?.launch ? mod.default : mod
    } catch (err) {
      console.error(`cannot load puppeteer-core from ${dir}: ${err.message}`)
    }
  }
  console.error(
    [
      'puppeteer-core is needed, installed outside this package (it must not become a dependency):',
      '  mkdir -p /tmp/devtools-shot && cd /tmp/devtools-shot && npm init -y && npm install puppeteer-core',
      'then run with PROFILE_PICTURE_MODULES=/tmp/devtools-shot/node_modules',
    ].join('\n'),
  )
  process.exit(2)
}
