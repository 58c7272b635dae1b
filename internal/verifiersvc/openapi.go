package verifiersvc

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3.1 description of every route, served at
// /openapi.json.
//
//go:embed openapi.json
var openAPI []byte

func (s *Service) handleOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(openAPI)
}
