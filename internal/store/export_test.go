package store

import "context"

// SetPolicyInsertedHook installs a function CreatePolicy calls inside its
// transaction right after the new version row is written (tests only).
func (s *Store) SetPolicyInsertedHook(f func(ctx context.Context)) {
	s.testHookPolicyInserted = f
}
