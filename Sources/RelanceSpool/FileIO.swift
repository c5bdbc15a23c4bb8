import Foundation
import RelanceCore
import Synchronization

/// Small POSIX file helpers with errno-carrying errors. Blocking: call off the cooperative pool.
public enum FileIO {
    public struct Failure: Error, CustomStringConvertible {
        public var operation: String
        public var path: String
        public var errno: Int32
        public var description: String { "\(operation) \(path): \(String(cString: strerror(errno)))" }
    }

    public static func writeDurably(_ data: Data, to path: String, mode: mode_t = 0o640) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw Failure(operation: "open", path: path, errno: errno) }
        defer { close(fd) }
        try writeAll(fd, data, path: path)
        guard fsync(fd) == 0 else { throw Failure(operation: "fsync", path: path, errno: errno) }
    }

    public static func appendDurably(_ data: Data, to path: String) throws {
        while true {
            let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
            guard fd >= 0 else { throw Failure(operation: "open", path: path, errno: errno) }
            defer { close(fd) }
            // Serialised with `rewriteLines` (retention): once the lock is held, the file must still
            // be the one at `path`, else it was replaced meanwhile and the line goes to the new one.
            guard flock(fd, LOCK_EX) == 0 else { throw Failure(operation: "flock", path: path, errno: errno) }
            var opened = stat()
            var current = stat()
            guard fstat(fd, &opened) == 0 else { throw Failure(operation: "fstat", path: path, errno: errno) }
            if stat(path, &current) != 0 || current.st_ino != opened.st_ino || current.st_dev != opened.st_dev { continue }
            try writeAll(fd, data, path: path)
            guard fsync(fd) == 0 else { throw Failure(operation: "fsync", path: path, errno: errno) }
            return
        }
    }

    /// Rewrites a file of lines keeping those `keep` accepts, atomically (temporary file, fsync,
    /// rename) and under the same lock as `appendDurably`. Streams: never the whole file in memory.
    /// Returns how many lines were dropped. A missing file drops nothing.
    public static func rewriteLines(_ path: String, keep: (Data) -> Bool) throws -> Int {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return 0 }
            throw Failure(operation: "open", path: path, errno: errno)
        }
        defer { close(fd) }
        guard flock(fd, LOCK_EX) == 0 else { throw Failure(operation: "flock", path: path, errno: errno) }
        let tmp = path + ".rewrite.tmp"
        let out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard out >= 0 else { throw Failure(operation: "open", path: tmp, errno: errno) }
        var dropped = 0
        do {
            defer { close(out) }
            var pending = Data()
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            func flushLines(final: Bool) throws {
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = pending[pending.startIndex...newline]
                    if keep(Data(line.dropLast())) { try writeAll(out, Data(line), path: tmp) } else { dropped += 1 }
                    pending.removeSubrange(pending.startIndex...newline)
                }
                if final && !pending.isEmpty {
                    if keep(pending) { try writeAll(out, pending, path: tmp) } else { dropped += 1 }
                }
            }
            while true {
                let n = read(fd, &buffer, buffer.count)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw Failure(operation: "read", path: path, errno: errno)
                }
                if n == 0 { break }
                pending.append(contentsOf: buffer[0..<n])
                try flushLines(final: false)
            }
            try flushLines(final: true)
            guard fsync(out) == 0 else { throw Failure(operation: "fsync", path: tmp, errno: errno) }
        } catch {
            Glibc.unlink(tmp)  // the temporary copy; the error that matters is the one thrown
            throw error
        }
        if dropped == 0 {
            try unlink(tmp)
            return 0
        }
        try rename(tmp, path)
        return dropped
    }

    static func writeAll(_ fd: Int32, _ data: Data, path: String) throws {
        try data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress!.advanced(by: offset), raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw Failure(operation: "write", path: path, errno: errno)
                }
                offset += n
            }
        }
    }

    /// `rename(2)`, then fsync of the target directory so the move survives a power cut.
    public static func rename(_ from: String, _ to: String) throws {
        guard Glibc.rename(from, to) == 0 else { throw Failure(operation: "rename", path: "\(from) → \(to)", errno: errno) }
        try syncDirectory((to as NSString).deletingLastPathComponent)
    }

    /// `unlink(2)`, then fsync of the directory.
    public static func unlink(_ path: String) throws {
        guard Glibc.unlink(path) == 0 else { throw Failure(operation: "unlink", path: path, errno: errno) }
        try syncDirectory((path as NSString).deletingLastPathComponent)
    }

    /// fsync of a directory, so the names it holds survive a power cut.
    public static func syncDirectory(_ path: String) throws {
        let directory = path.isEmpty ? "." : path
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(operation: "open", path: directory, errno: errno) }
        defer { close(fd) }
        // EINVAL: the file system cannot sync directories (nothing more to do there).
        guard fsync(fd) == 0 || errno == EINVAL else { throw Failure(operation: "fsync", path: directory, errno: errno) }
    }
}
