// The greeter world (wit/greeter.wit) in JavaScript, made a component by componentize-js
// (scripts/build-guests.mjs builds greeter.js.component.wasm).
export function greet(person) {
  return `Hello, ${person.name}! You are ${person.age}.`
}

export function shout(s) {
  return `${s.toUpperCase()}!`
}
