#define _GNU_SOURCE
#include "cjail.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/mount.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#define MOUNT_ATTR_NOSUID 0x00000002
#define MOUNT_ATTR_NODEV 0x00000004
struct mount_attr { uint64_t attr_set, attr_clr, propagation, userns_fd; };
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
#define SECBIT_NOROOT_ALL 0x3      /* NOROOT | NOROOT_LOCKED */
#define SECBIT_NO_SETUID_FIXUP_ALL 0xc
#define SECBIT_KEEP_CAPS_LOCKED 0x20
#define SECBIT_NO_CAP_AMBIENT_RAISE_ALL 0xc0

const unsigned long cjail_CLONE_NEWUSER = CLONE_NEWUSER;
const unsigned long cjail_CLONE_NEWNS = CLONE_NEWNS;
const unsigned long cjail_CLONE_NEWPID = CLONE_NEWPID;
const unsigned long cjail_CLONE_NEWNET = CLONE_NEWNET;
const unsigned long cjail_CLONE_NEWIPC = CLONE_NEWIPC;
const unsigned long cjail_CLONE_NEWUTS = CLONE_NEWUTS;
const unsigned long cjail_CLONE_NEWCGROUP = CLONE_NEWCGROUP;

pid_t cjail_clone(unsigned long flags) {
    return (pid_t)syscall(SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
}

int cjail_pivot_root(const char *new_root, const char *put_old) {
    return (int)syscall(SYS_pivot_root, new_root, put_old);
}

int cjail_mount_setattr(const char *path, int readonly, int nosuid, int nodev, int recursive) {
    struct mount_attr attr;
    memset(&attr, 0, sizeof attr);
    if (readonly) attr.attr_set |= MOUNT_ATTR_RDONLY;
    if (nosuid) attr.attr_set |= MOUNT_ATTR_NOSUID;
    if (nodev) attr.attr_set |= MOUNT_ATTR_NODEV;
    return (int)syscall(SYS_mount_setattr, AT_FDCWD, path, recursive ? AT_RECURSIVE : 0, &attr, sizeof attr);
}

int cjail_pidfd_open(pid_t pid) {
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int cjail_loopback_up(void) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct ifreq request;
    memset(&request, 0, sizeof request);
    strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
    if (ioctl(fd, SIOCGIFFLAGS, &request) < 0) { int e = errno; close(fd); errno = e; return -1; }
    request.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(fd, SIOCSIFFLAGS, &request) < 0) { int e = errno; close(fd); errno = e; return -1; }
    close(fd);
    return 0;
}

/* Locks the securebits and empties the bounding and ambient sets (needs CAP_SETPCAP). */
static int restrict_capabilities(void) {
    if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT_ALL | SECBIT_NO_SETUID_FIXUP_ALL |
              SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE_ALL, 0, 0, 0) < 0) return -1;
    for (int cap = 0; cap <= 63; cap++) {
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) return -1;
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) return -1;
    return 0;
}

static int clear_capabilities(void) {
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    return (int)syscall(SYS_capset, &header, data);
}

int cjail_drop_capabilities(void) {
    if (restrict_capabilities() < 0) return -1;
    return clear_capabilities();
}

int cjail_drop_capabilities_as(uid_t uid, gid_t gid) {
    if (restrict_capabilities() < 0) return -1;
    /* SECBIT_NO_SETUID_FIXUP keeps CAP_SETUID across the gid change; the capset clears it after. */
    if (setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) return -1;
    return clear_capabilities();
}

int cjail_set_no_new_privs(void) {
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

int cjail_load_seccomp(const void *program, size_t length) {
    if (length == 0 || length % sizeof(struct sock_filter) != 0) { errno = EINVAL; return -1; }
    struct sock_fprog prog;
    prog.len = (unsigned short)(length / sizeof(struct sock_filter));
    prog.filter = (struct sock_filter *)program;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
}

int cjail_spawn_file_actions_addclosefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

int cjail_close_from(int from) {
    return (int)syscall(SYS_close_range, (unsigned)from, ~0U, 0);
}

int cjail_errno(void) { return errno; }

/* Writes "inside outside 1" to /proc/pid/<file>. */
static int write_map(pid_t pid, const char *file, unsigned inside, unsigned outside) {
    char path[64], line[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
    int length = snprintf(line, sizeof line, "%u %u 1\n", inside, outside);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int result = write(fd, line, (size_t)length) == length ? 0 : -1;
    int saved = errno;
    close(fd);
    errno = saved;
    return result;
}

/* The holder: keeps a new user namespace alive until its creator has opened it. */
static int hold_namespace(void *pipe_fds) {
    /* Shares the creator's memory (and so its errno): touch nothing but the pipe. */
    int *fds = pipe_fds;
    char byte;
    close(fds[1]);
    while (read(fds[0], &byte, 1) < 0) {}
    return 0;
}

int cjail_make_userns(uid_t inside_uid, uid_t outside_uid, gid_t inside_gid, gid_t outside_gid) {
    int hold[2];
    if (pipe2(hold, O_CLOEXEC) < 0) return -1;
    /* CLONE_VM: no copy of the address space, and no copy-on-write faults afterwards. */
    static char stack[16384] __attribute__((aligned(16)));
    pid_t pid = clone(hold_namespace, stack + sizeof stack, CLONE_NEWUSER | CLONE_VM | SIGCHLD, hold);
    if (pid < 0) { int e = errno; close(hold[0]); close(hold[1]); errno = e; return -1; }
    int fd = -1, saved = 0;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/setgroups", (int)pid);
    int setgroups_fd = open(path, O_WRONLY | O_CLOEXEC);
    if (setgroups_fd >= 0) {
        if (write(setgroups_fd, "deny", 4) != 4) saved = errno;
        close(setgroups_fd);
    } else {
        saved = errno;
    }
    if (saved == 0 && write_map(pid, "uid_map", inside_uid, outside_uid) < 0) saved = errno;
    if (saved == 0 && write_map(pid, "gid_map", inside_gid, outside_gid) < 0) saved = errno;
    if (saved == 0) {
        snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) saved = errno;
    }
    close(hold[1]);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
    close(hold[0]);
    errno = saved;
    return fd;
}

int cjail_idmapped_bind(const char *source, const char *target, int userns_fd, int readonly) {
    int tree = (int)syscall(SYS_open_tree, AT_FDCWD, source, OPEN_TREE_CLONE | O_CLOEXEC | AT_RECURSIVE);
    if (tree < 0) return -1;
    struct mount_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (readonly ? MOUNT_ATTR_RDONLY : 0);
    attr.userns_fd = (uint64_t)userns_fd;
    int result = (int)syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr);
    if (result == 0) result = (int)syscall(SYS_move_mount, tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH);
    int saved = errno;
    close(tree);
    errno = saved;
    return result;
}

int cjail_enter_userns(int userns_fd) { return setns(userns_fd, CLONE_NEWUSER); }

int cjail_die_with_parent(void) { return prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0); }

int cjail_setresuid(uid_t uid) { return setresuid(uid, uid, uid); }
int cjail_setresgid(gid_t gid) { return setresgid(gid, gid, gid); }
int cjail_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }
const int cjail_RLIMIT_NPROC = RLIMIT_NPROC;
int cjail_sigrtmax(void) { return SIGRTMAX; }

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
struct cjail_open_how { uint64_t flags; uint64_t mode; uint64_t resolve; };
#define CJAIL_RESOLVE_NO_MAGICLINKS 0x02
#define CJAIL_RESOLVE_IN_ROOT 0x10

int cjail_open_in_root(int rootfd, const char *path, int flags, unsigned int mode) {
    struct cjail_open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)(flags | O_CLOEXEC);
    how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
    how.resolve = CJAIL_RESOLVE_IN_ROOT | CJAIL_RESOLVE_NO_MAGICLINKS;
    return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
}

int cjail_thread_act_as(uid_t uid, gid_t gid) {
    // Raw syscalls: glibc's setgroups would change every thread of the process.
    if (geteuid() == 0 && syscall(SYS_setgroups, 0, NULL) < 0) return -1;
    syscall(SYS_setfsgid, gid);
    syscall(SYS_setfsuid, uid);
    if ((gid_t)syscall(SYS_setfsgid, -1) != gid || (uid_t)syscall(SYS_setfsuid, -1) != uid) {
        errno = EPERM;
        return -1;
    }
    struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &header, data) < 0) return -1;
    data[0].effective = 0;
    data[1].effective = 0;
    return (int)syscall(SYS_capset, &header, data);
}
const int cjail_O_PATH = O_PATH;

int cjail_credential_socketpair(int fds[2]) {
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0) return -1;
    int on = 1;
    if (setsockopt(fds[0], SOL_SOCKET, SO_PASSCRED, &on, sizeof on) < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    return 0;
}

ssize_t cjail_receive_from(int fd, void *buffer, size_t length, pid_t *sender) {
    struct iovec iov = { buffer, length };
    union {
        char bytes[CMSG_SPACE(sizeof(struct ucred))];
        struct cmsghdr align;
    } control;
    struct msghdr message = { 0 };
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    message.msg_control = control.bytes;
    message.msg_controllen = sizeof control.bytes;
    *sender = 0;
    ssize_t count = recvmsg(fd, &message, MSG_CMSG_CLOEXEC);
    if (count <= 0) return count;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_CREDENTIALS) {
            struct ucred credentials;
            memcpy(&credentials, CMSG_DATA(header), sizeof credentials);
            *sender = credentials.pid;
        }
    }
    return count;
}

/* Room for the SCM_RIGHTS header of the most descriptors one channel message carries. */
typedef union {
    char bytes[CMSG_SPACE(sizeof(int) * CJAIL_MAX_PASSED_DESCRIPTORS)];
    struct cmsghdr align;
} descriptor_control;

ssize_t cjail_send_with_descriptors(int socket, const void *bytes, size_t length, const int *fds, int count) {
    if (count < 0 || count > CJAIL_MAX_PASSED_DESCRIPTORS) { errno = EINVAL; return -1; }
    struct iovec iov = { (void *)bytes, length };
    descriptor_control control;
    struct msghdr message = { 0 };
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    if (count > 0) {
        memset(&control, 0, sizeof control);
        message.msg_control = control.bytes;
        message.msg_controllen = CMSG_SPACE(sizeof(int) * count);
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int) * count);
        memcpy(CMSG_DATA(header), fds, sizeof(int) * count);
    }
    ssize_t sent;
    do { sent = sendmsg(socket, &message, MSG_NOSIGNAL); } while (sent < 0 && errno == EINTR);
    return sent;
}

ssize_t cjail_receive_with_descriptors(int socket, void *buffer, size_t length, int *fds, int *count) {
    struct iovec iov = { buffer, length };
    descriptor_control control;
    struct msghdr message = { 0 };
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    message.msg_control = control.bytes;
    message.msg_controllen = sizeof control.bytes;
    *count = 0;
    ssize_t received;
    do { received = recvmsg(socket, &message, MSG_CMSG_CLOEXEC); } while (received < 0 && errno == EINTR);
    if (received < 0) return received;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        int n = (int)((header->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < n; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(header) + i * sizeof(int), sizeof(int));
            if (*count < CJAIL_MAX_PASSED_DESCRIPTORS) fds[(*count)++] = fd; else close(fd);
        }
    }
    if (message.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) { errno = EMSGSIZE; return -1; }
    return received;
}

int cjail_seqpacket_pair(int fds[2]) { return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds); }
int cjail_unshare_cgroup(void) { return unshare(CLONE_NEWCGROUP); }
