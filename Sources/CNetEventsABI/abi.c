// Empty: SwiftPM builds a C target from at least one source; the contract is all in include/.
