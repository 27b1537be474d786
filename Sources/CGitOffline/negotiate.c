/*
 * libgit2's HTTP transport answers a server's "WWW-Authenticate: Negotiate" through GSS-API
 * (Kerberos). Debian's libgit2 links libgssapi_krb5, and with it libkrb5, libk5crypto,
 * libcom_err, libkrb5support, libkeyutils and libresolv: seven shared objects and 0.7 ms of
 * loading at every start, for a transport Warden never uses (every repository it opens is
 * local). The link redirects libgit2's GSS-API references (`--wrap`, see Package.swift) to
 * these, and libgssapi_krb5 is not linked at all.
 *
 * Every call fails, so Negotiate authentication fails closed: libgit2 reports "could not
 * query mechanisms: unknown negotiate error" and sends no credentials.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stddef.h>
#include "cgitoffline.h"

typedef uint32_t gss_status;

/* GSS_S_FAILURE: routine error 13, in the routine-error field (bits 16-23) of a major status. */
static const gss_status gss_failure = 13u << 16;

static atomic_int refused_negotiations;

/* GSS_C_NT_HOSTBASED_SERVICE is a gss_OID: libgit2 only passes it to gss_import_name. */
const void *__wrap_GSS_C_NT_HOSTBASED_SERVICE = NULL;

/* The first call of libgit2's Negotiate context: no mechanism is available. */
gss_status __wrap_gss_indicate_mechs(gss_status *minor, void **mechanisms) {
    if (minor) *minor = 0;
    if (mechanisms) *mechanisms = NULL;
    atomic_fetch_add(&refused_negotiations, 1);
    return gss_failure;
}

/* libgit2 falls back to "unknown negotiate error" when there is no message. */
gss_status __wrap_gss_display_status(gss_status *minor, gss_status status, int type, const void *mechanism,
                                     gss_status *context, void *buffer) {
    (void)status; (void)type; (void)mechanism; (void)buffer;
    if (minor) *minor = 0;
    if (context) *context = 0;
    return gss_failure;
}

gss_status __wrap_gss_import_name(gss_status *minor, const void *name, const void *type, void **out) {
    (void)name; (void)type;
    if (minor) *minor = 0;
    if (out) *out = NULL;
    return gss_failure;
}

gss_status __wrap_gss_init_sec_context(gss_status *minor) {
    if (minor) *minor = 0;
    return gss_failure;
}

gss_status __wrap_gss_delete_sec_context(gss_status *minor, void **context, void *token) {
    (void)token;
    if (minor) *minor = 0;
    if (context) *context = NULL;
    return 0;
}

/* Nothing was ever allocated: releasing is a success with nothing to free. */
gss_status __wrap_gss_release_buffer(gss_status *minor, void *buffer) {
    (void)buffer;
    if (minor) *minor = 0;
    return 0;
}

gss_status __wrap_gss_release_name(gss_status *minor, void **name) {
    if (minor) *minor = 0;
    if (name) *name = NULL;
    return 0;
}

gss_status __wrap_gss_release_oid_set(gss_status *minor, void **set) {
    if (minor) *minor = 0;
    if (set) *set = NULL;
    return 0;
}

int cgitoffline_refused_negotiations(void) { return atomic_load(&refused_negotiations); }
