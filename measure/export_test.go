package measure

// RecoverACPILayoutUncached is RecoverACPILayout without the cache, for
// benchmarks.
var RecoverACPILayoutUncached = recoverACPILayout
