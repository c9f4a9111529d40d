import Glibc

/// The few file-system reads the attribution code shares: directory entries and symbolic links
/// of `/proc`, `/sys/fs/cgroup` and `/run/netns`.
package enum FileSystem {
    /// Calls `body` with the name, type (`DT_DIR`, ...) and inode number of every entry of
    /// `directory` but `.` and `..`; nothing if it cannot be opened.
    package static func forEachEntry(of directory: String, _ body: (_ name: String, _ type: UInt8, _ inode: UInt64) -> Void) {
        guard let handle = opendir(directory) else { return }
        defer { closedir(handle) }
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { body(name, entry.pointee.d_type, UInt64(entry.pointee.d_ino)) }
        }
    }

    /// The target of the symbolic link at `path`; nil if it is none or cannot be read.
    package static func readLink(_ path: String) -> String? {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(PATH_MAX)) { buffer in
            let count = readlink(path, buffer.baseAddress!, buffer.count)
            guard count > 0 else { return nil }
            return String(decoding: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[0..<count]), as: UTF8.self)
        }
    }

    /// The inode number of what `path` names; nil if it cannot be read.
    package static func inode(of path: String) -> UInt64? {
        var status = stat()
        return stat(path, &status) == 0 ? UInt64(status.st_ino) : nil
    }
}
