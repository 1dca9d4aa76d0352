package server

import (
	"net/http"
	"slices"
	"time"

	connectcors "connectrpc.com/cors"
	"github.com/rs/cors"
)

// WithCORS lets web pages of these origins ("https://app.example",
// scheme and host exactly) call the API from a browser, over Connect and
// gRPC-Web. Off (no origin) by default: a browser then refuses another
// site's page any answer. Credentials (cookies) are never allowed across
// origins; a client sends its token in the Authorization header.
func WithCORS(origins ...string) Option {
	return func(s *Server) { s.corsOrigins = append(s.corsOrigins, origins...) }
}

// withCORS wraps h with the CORS rules for s's origins, or returns h.
func (s *Server) withCORS(h http.Handler) http.Handler {
	if len(s.corsOrigins) == 0 {
		return h
	}
	return cors.New(cors.Options{
		AllowedOrigins: slices.Clone(s.corsOrigins),
		AllowedMethods: connectcors.AllowedMethods(),
		// Connect's and gRPC-Web's own headers, the bearer token, and
		// compression (requests are compressed, answers may be).
		AllowedHeaders: append(connectcors.AllowedHeaders(), "Authorization",
			"Connect-Content-Encoding", "Connect-Accept-Encoding", "Content-Encoding", "Accept-Encoding",
			"Grpc-Encoding", "Grpc-Accept-Encoding"),
		ExposedHeaders: append(connectcors.ExposedHeaders(), "Grpc-Encoding", "Grpc-Accept-Encoding",
			"Connect-Content-Encoding", "Connect-Accept-Encoding", "Content-Encoding"),
		// Browsers cap this; a day saves a preflight per call.
		MaxAge: int((24 * time.Hour).Seconds()),
	}).Handler(h)
}
