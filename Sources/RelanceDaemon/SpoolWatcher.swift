import Foundation
import Synchronization

/// Watches `incoming/` (and its queue subdirectories) with inotify on a dedicated thread, calling
/// `onChange` when a file is moved in or finished. The periodic rescan covers whatever it misses.
final class SpoolWatcher: Sendable {
    private let fd: Int32
    private let directory: String
    private let stopped = Atomic<Bool>(false)
    private let onChange: @Sendable () -> Void

    init?(directory: String, onChange: @escaping @Sendable () -> Void) {
        let fd = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard fd >= 0 else { return nil }
        self.fd = fd
        self.directory = directory
        self.onChange = onChange
        watchTree()
    }

    private func watchTree() {
        let mask = UInt32(IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE)
        _ = inotify_add_watch(fd, directory, mask)
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: directory + "/" + entry, isDirectory: &isDir), isDir.boolValue {
                _ = inotify_add_watch(fd, directory + "/" + entry, mask)
            }
        }
    }

    func start() {
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
                    watchTree()
                    onChange()
                }
            }
            close(fd)
        }
        thread.name = "relance-inotify"
        thread.start()
    }

    func stop() { stopped.store(true, ordering: .relaxed) }
}
