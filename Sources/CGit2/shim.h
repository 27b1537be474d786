#include <git2.h>
#include <git2/sys/repository.h>
#include <git2/sys/mempack.h>

/* `git_libgit2_opts` is variadic, which Swift cannot call; these fixed-argument wrappers can be. */

/** `git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, level, path)`. */
static inline int warden_git_set_search_path(int level, const char *path) {
    return git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, level, path);
}

/** `git_libgit2_opts(option, value)` for the options that take one `int` (the GIT_OPT_ENABLE_* family). */
static inline int warden_git_set_int_option(int option, int value) {
    return git_libgit2_opts(option, value);
}
