// Package pcscache is a caching [pcs.Source]: verified PCS responses in
// memory and, optionally, in a directory that survives restarts and
// doubles as an offline bundle.
//
// A [Cache] sits in front of an upstream [pcs.Fetcher] (normally a
// [pcs.Client]) and caches the four responses of every [pcs.Key] one by
// one — TCB info, QE identity, PCK CRL, root CA CRL — keyed by
// [pcs.ItemKey]. It:
//
//   - serves an item while it is inside its validity window
//     ([pcs.Item.ValidFrom], [pcs.Item.ValidUntil]) and, if configured,
//     younger than a maximum age ([WithMaxAge]);
//   - fetches a missing or expired item once however many callers ask
//     for it at the same time (single-flight per item);
//   - keeps the parsed and verified objects, and hands out the same
//     *collateral.Collateral for a key until one of its items changes, so
//     a dcap.Verifier recognises it without re-verifying anything;
//   - writes every accepted response to the directory (atomically: temp
//     file, then rename) in the layout of [pcs.ItemKey.Path], which
//     collateral.ReadPCSDir also reads, and reads it back (verifying it
//     again) after a restart;
//   - refreshes items ahead of expiry, and periodically, in a background
//     loop the owner starts with [Cache.Run];
//   - serves an expired item for a configurable grace period when the
//     upstream fails (stale-if-error), and refuses it after that;
//   - with no upstream (offline), never touches the network and names
//     the missing item and file in its error.
//
// Errors wrap pcs.ErrUnavailable ([ErrOffline], [ErrTooOld], upstream
// failures) or pcs.ErrInvalidResponse.
//
// Validity windows and the refresh cadence are described in
// docs/collateral.md.
package pcscache
