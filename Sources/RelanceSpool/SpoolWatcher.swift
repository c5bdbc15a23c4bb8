import Foundation
import Synchronization

/// Watches a spool directory (and its queue subdirectories) with inotify on a dedicated thread,
/// calling `onChange` when a file is moved in or finished. The periodic rescan covers whatever it
/// misses; a directory that cannot be watched is reported through `onError`, once.
public final class SpoolWatcher: Sendable {
    private let fd: Int32
    private let directory: String
    private let stopped = Atomic<Bool>(false)
    private let onChange: @Sendable () -> Void
    private let onError: @Sendable (String) -> Void
    private let reported = Mutex<Set<String>>([])

    /// Nil when inotify is unavailable or the directory itself cannot be watched.
    public init?(directory: String, onChange: @escaping @Sendable () -> Void, onError: @escaping @Sendable (String) -> Void) {
        let fd = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard fd >= 0 else {
            onError("inotify_init1: \(String(cString: strerror(errno)))")
            return nil
        }
        self.fd = fd
        self.directory = directory
        self.onChange = onChange
        self.onError = onError
        guard watch(directory) else {
            close(fd)
            return nil
        }
        watchSubdirectories()
    }

    static let mask = UInt32(IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE)

    /// Adds a watch; false (reported once) when the kernel refuses it (no such directory, watch limit).
    private func watch(_ path: String) -> Bool {
        guard inotify_add_watch(fd, path, Self.mask) < 0 else { return true }
        let reason = "inotify_add_watch \(path): \(String(cString: strerror(errno)))"
        if reported.withLock({ $0.insert(path).inserted }) { onError(reason) }
        return false
    }

    private func watchSubdirectories() {
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: directory + "/" + entry, isDirectory: &isDir), isDir.boolValue {
                _ = watch(directory + "/" + entry)
            }
        }
    }

    public func start() {
        let thread = Thread { [self] in
            var buffer = [UInt8](repeating: 0, count: 8192)
            while !stopped.load(ordering: .relaxed) {
                var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let ready = poll(&pfd, 1, 500)
                guard ready > 0 else { continue }
                var sawEvent = false
                while read(fd, &buffer, buffer.count) > 0 { sawEvent = true }
                if sawEvent {
                    // A new queue directory needs its own watch; adding one twice is harmless.
                    watchSubdirectories()
                    onChange()
                }
            }
            close(fd)
        }
        thread.name = "relance-inotify"
        thread.start()
    }

    public func stop() { stopped.store(true, ordering: .relaxed) }
}
