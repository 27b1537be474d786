#include <zlib.h>
#include <openssl/evp.h>

/* `inflateInit2` is a macro, which Swift cannot call. windowBits 47 (15 + 32) reads gzip and zlib. */
static inline int warden_inflate_init(z_stream *stream) {
    return inflateInit2(stream, 15 + 32);
}
