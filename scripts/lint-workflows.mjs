#!/usr/bin/env node
// Validates every GitHub Actions workflow against its schema with action-validator (offline:
// its schema and validator ship in the npm package), so a typo in a key fails `npm run lint`.
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = dirname(dirname(fileURLToPath(import.meta.url)))
const workflows = join(root, '.github', 'workflows')
const cli = join(dirname(createRequire(import.meta.url).resolve('@action-validator/cli/package.json')), 'cli.mjs')
let failed = 0
for (const file of readdirSync(workflows).filter((name) => /\.ya?ml$/.test(name))) {
  const { status } = spawnSync(process.execPath, [cli, join(workflows, file)], { stdio: 'inherit' })
  if (status !== 0) failed++
  else console.log(`lint-workflows: ${file} is valid`)
}
process.exitCode = failed === 0 ? 0 : 1
