// Package agent is tdproof's attestation agent, the part that runs inside
// the TD (dstack.md §2.4, §6.3; rats-kbs.md §2):
//
//   - [Log] is the RTMR3 runtime event log in dstack's format: each event
//     extends RTMR3 first, then is appended as one JSON line, under an
//     exclusive flock so that concurrent agents and processes serialize;
//   - [EmitBootEvents] records the boot-time identity events of an
//     app-compose.json in dstack's order;
//   - [Server] is the local HTTP API compatible with dstack's guest agent
//     (GetQuote, Attest, Info, GetKey, GetTlsKey);
//   - [Client] is a KBS client speaking Trustee's RCAR protocol 0.4.0.
//
// The TD is reached through the tsm interfaces: tsm.ConfigFSQuoter and
// tsm.Sysfs on a real TDX guest, a tdsim.Sim in tests and simulation.
package agent
