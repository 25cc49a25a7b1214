//! gvhttpd's load generator (`gvhttpd bench`).
