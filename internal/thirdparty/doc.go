// Package thirdparty tests wsroom under third-party routers. It is its own
// module so that the core module does not depend on them.
package thirdparty
