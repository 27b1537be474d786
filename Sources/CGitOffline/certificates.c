/*
 * Debian builds libgit2 with mbedTLS, and git_libgit2_init() parses the system's whole CA
 * bundle (/etc/ssl/certs/ca-certificates.crt, about 140 certificates): 3.7 of the 4.3 ms the
 * call takes, on every warden process, on the two cores that also start the jail.
 *
 * Warden never uses libgit2's network transports: every repository it opens is local. The
 * link therefore redirects libgit2's calls to the two mbedTLS functions that load those
 * certificates (`--wrap`, see Package.swift) to these, which load nothing. Should libgit2 ever
 * open an HTTPS connection in this process, it would have no trusted roots and refuse every
 * server: the failure is closed, never an unchecked connection. mbedTLS itself keeps its own
 * functions: only libgit2's references are redirected, and nothing else in Warden uses mbedTLS
 * (the model client's TLS is BoringSSL, inside swift-nio-ssl, under its own names).
 */
#include <stdatomic.h>
#include "cgitoffline.h"

static atomic_int skipped_loads;

int __wrap_mbedtls_x509_crt_parse_file(void *chain, const char *path) {
    (void)chain;
    (void)path;
    atomic_fetch_add(&skipped_loads, 1);
    return 0;
}

int __wrap_mbedtls_x509_crt_parse_path(void *chain, const char *path) {
    (void)chain;
    (void)path;
    atomic_fetch_add(&skipped_loads, 1);
    return 0;
}

int cgitoffline_skipped_certificate_loads(void) { return atomic_load(&skipped_loads); }
