// Paths to the test guests, and their text, for the specs.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export const guestPath = (name) => fileURLToPath(new URL(`../guests/${name}`, import.meta.url))
export const guestText = (name) => readFileSync(guestPath(name), 'utf8')
