#pragma once
// Linux calls Swift cannot import as is: clone with namespace flags, pivot_root,
// mount_setattr, pidfd_open, capability sets, seccomp loading, loopback set-up and
// posix_spawn's closefrom. Everything here is async-signal-safe and allocation-free.
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <spawn.h>

// The interface between the harness and warden-jail: the specification's directives, the
// descriptors and the shell's status socket. Bump it with any change to them, so a helper left
// over from another build refuses to start instead of running a shell nobody can frame.
#define CJAIL_PROTOCOL_VERSION 5

// Namespace flags (defined in sched.h only under _GNU_SOURCE).
extern const unsigned long cjail_CLONE_NEWUSER;
extern const unsigned long cjail_CLONE_NEWNS;
extern const unsigned long cjail_CLONE_NEWPID;
extern const unsigned long cjail_CLONE_NEWNET;
extern const unsigned long cjail_CLONE_NEWIPC;
extern const unsigned long cjail_CLONE_NEWUTS;
extern const unsigned long cjail_CLONE_NEWCGROUP;

/// fork(2)-like clone into new namespaces; returns 0 in the child, the pid in the parent, -1 on error.
pid_t cjail_clone(unsigned long flags);
int cjail_pivot_root(const char *new_root, const char *put_old);
/// Sets mount attributes (read-only, nosuid, nodev) on path, recursively when recursive != 0.
int cjail_mount_setattr(const char *path, int readonly, int nosuid, int nodev, int recursive);
int cjail_pidfd_open(pid_t pid);
/// Brings the loopback interface of the current network namespace up.
int cjail_loopback_up(void);
/// Locks securebits, drops the bounding set, ambient, inheritable, permitted and effective caps.
int cjail_drop_capabilities(void);
/// The same, becoming uid/gid on the way (the bounding set goes first, while CAP_SETPCAP is held).
int cjail_drop_capabilities_as(uid_t uid, gid_t gid);
int cjail_set_no_new_privs(void);
/// Loads a classic BPF seccomp program (an array of struct sock_filter, 8 bytes each).
int cjail_load_seccomp(const void *program, size_t length);
int cjail_spawn_file_actions_addclosefrom(posix_spawn_file_actions_t *actions, int from);
/// Closes every descriptor >= from (close_range).
int cjail_close_from(int from);
int cjail_errno(void);
/// Creates a user namespace mapping inside_uid/gid to outside_uid/gid (setgroups denied) and
/// returns a descriptor for it, or -1. A short-lived child holds the namespace while the
/// maps are written; the caller needs CAP_SETUID/CAP_SETGID over the outside ids.
int cjail_make_userns(uid_t inside_uid, uid_t outside_uid, gid_t inside_gid, gid_t outside_gid);
/// Binds source (recursively) on target through an id-mapped mount: files owned by ids the
/// namespace maps from appear owned by the ids it maps to. Also nosuid, nodev, optionally read-only.
int cjail_idmapped_bind(const char *source, const char *target, int userns_fd, int readonly);
/// setns(fd, CLONE_NEWUSER).
int cjail_enter_userns(int userns_fd);
/// PR_SET_PDEATHSIG with SIGKILL: the calling process is killed when its parent thread exits.
int cjail_die_with_parent(void);
int cjail_setresuid(uid_t uid);
int cjail_setresgid(gid_t gid);
/// pipe2 with O_CLOEXEC on both ends.
int cjail_pipe_cloexec(int fds[2]);
extern const int cjail_RLIMIT_NPROC;
/// The highest signal number (SIGRTMAX is a function call in glibc).
int cjail_sigrtmax(void);
/// openat2 with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS: rootfd is "/" for the path, its
/// "..", and absolute symlinks, as for a process chrooted there; /proc magic links are refused.
int cjail_open_in_root(int rootfd, const char *path, int flags, unsigned int mode);
/// For the calling thread only: drops supplementary groups (when root), sets the filesystem
/// uid and gid, and clears the effective capabilities, so file access is checked as for a
/// jailed process whose ids map to uid and gid on the host.
int cjail_thread_act_as(uid_t uid, gid_t gid);
extern const int cjail_O_PATH;
/// A close-on-exec AF_UNIX stream socketpair; fds[0] has SO_PASSCRED, so every read from it
/// learns which process wrote the bytes (the kernel fills in the writer's pid; a process
/// without CAP_SYS_ADMIN cannot claim another's).
int cjail_credential_socketpair(int fds[2]);
/// The most descriptors one message of the helper's channel to its jail carries.
#define CJAIL_MAX_PASSED_DESCRIPTORS 64
/// A close-on-exec AF_UNIX SOCK_SEQPACKET socketpair (messages keep their bounds).
int cjail_seqpacket_pair(int fds[2]);
/// sendmsg of `length` bytes with `count` descriptors attached (SCM_RIGHTS, at most
/// CJAIL_MAX_PASSED_DESCRIPTORS); retries on EINTR, never raises SIGPIPE.
ssize_t cjail_send_with_descriptors(int socket, const void *bytes, size_t length, const int *fds, int count);
/// recvmsg of one message into buffer; the descriptors it carried (now close-on-exec) go to
/// fds, which has room for CJAIL_MAX_PASSED_DESCRIPTORS, and their number to *count. A message
/// larger than `length` is an error (EMSGSIZE). Returns 0 when the peer closed its end.
ssize_t cjail_receive_with_descriptors(int socket, void *buffer, size_t length, int *fds, int *count);
/// unshare(CLONE_NEWCGROUP): the caller's current cgroups become its cgroup namespace's root.
int cjail_unshare_cgroup(void);
/// recvmsg on a SO_PASSCRED socket: returns bytes read (one writer's bytes only: the kernel
/// never merges data from writers with different credentials) and stores the writer's pid,
/// as seen from the caller's pid namespace, in *sender (0 when none came).
ssize_t cjail_receive_from(int fd, void *buffer, size_t length, pid_t *sender);
