#ifndef CGITTLS_H
#define CGITTLS_H

/* How many times libgit2 asked to load CA certificates since the process started (see tls_roots.c). */
int cgittls_skipped_certificate_loads(void);

#endif
