// open_by_handle_at(2) and fstatfs(2), which Swift's Glibc module leaves out (glibc declares the
// first only with _GNU_SOURCE), wrapped for the one use the package has: opening a cgroup v2
// directory by its id.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/vfs.h>

/// The handle type of kernfs (cgroup v2) file handles: the 8-byte handle is the cgroup id
/// (include/linux/exportfs.h, FILEID_KERNFS).
#define NE_FILEID_KERNFS 0xfe

/// Opens (O_PATH) the cgroup v2 directory whose id (what bpf_get_current_cgroup_id returns) is
/// `cgroup_id`, on the hierarchy mounted where `mount_fd` is open. Needs CAP_DAC_READ_SEARCH.
/// Returns the descriptor, or -1 with errno set (ESTALE: no such cgroup now).
static inline int ne_open_cgroup_by_id(int mount_fd, uint64_t cgroup_id) {
    union {
        struct file_handle handle;
        unsigned char storage[sizeof(struct file_handle) + sizeof(uint64_t)];
    } buffer;
    buffer.handle.handle_bytes = sizeof(uint64_t);
    buffer.handle.handle_type = NE_FILEID_KERNFS;
    memcpy(buffer.handle.f_handle, &cgroup_id, sizeof(cgroup_id));
    return open_by_handle_at(mount_fd, &buffer.handle, O_PATH | O_CLOEXEC);
}

/// CGROUP2_SUPER_MAGIC (include/uapi/linux/magic.h).
#define NE_CGROUP2_SUPER_MAGIC 0x63677270

/// Whether `fd` is open on a cgroup v2 file system (whose directories open by id).
static inline int ne_is_cgroup2(int fd) {
    struct statfs system;
    return fstatfs(fd, &system) == 0 && system.f_type == NE_CGROUP2_SUPER_MAGIC;
}
