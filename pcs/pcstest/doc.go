// Package pcstest is a fake Intel PCS / PCCS for tests: an http.Handler
// answering the v4 SGX and TDX collateral routes from canned responses,
// byte for byte and with their headers exactly as given, plus request
// counting and fault injection.
//
// Serve it with httptest.NewServer, or in process (no sockets, usable
// inside testing/synctest bubbles) through [Server.Transport].
//
// # Security
//
// Test and simulation use only: besides tests, tdproof tdsim export
// serves a simulated TD's collateral through it, in process, to write a
// collateral directory. Collateral built from package dcaptest is signed
// by keys anyone can generate.
package pcstest
