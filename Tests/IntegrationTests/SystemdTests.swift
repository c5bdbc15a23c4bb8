import Foundation
import RelanceCore
import RelanceStore
import Synchronization
import Testing

@testable import RelanceConfig
@testable import RelanceDaemon
@testable import RelanceDispatch
@testable import RelanceHTTP
@testable import RelanceSpool

/// A datagram socket standing in for systemd's notification socket; records what it receives.
final class NotifySocket: Sendable {
    let path: String
    private let fd: Int32
    private let received = Mutex<[String]>([])
    private let closed = Atomic<Bool>(false)

    init(path: String) throws {
        self.path = path
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let ok = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard ok == 0 else { throw TimedOut(description: "cannot bind \(path): \(String(cString: strerror(errno)))") }
        self.fd = fd
        Thread.detachNewThread { [self] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !closed.load(ordering: .relaxed) {
                var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&pfd, 1, 100) > 0 else { continue }
                let n = recv(fd, &buffer, buffer.count, 0)
                if n > 0 { received.withLock { $0.append(String(decoding: buffer[0..<n], as: UTF8.self)) } }
            }
            close(fd)
        }
    }

    var messages: [String] { received.withLock { $0 } }
    deinit { closed.store(true, ordering: .relaxed) }
}

@Suite struct SystemdTests {
    @Test func notifierSpeaksToAPathAndIgnoresNoSocket() throws {
        let sandbox = try Sandbox()
        let socket = try NotifySocket(path: sandbox.root + "/notify.sock")
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": socket.path, "WATCHDOG_USEC": "4000000"])
        #expect(notifier.watchdogInterval == .seconds(2))
        #expect(notifier.notify("READY=1\nSTATUS=hello"))
        #expect(!SystemdNotifier(environment: [:]).notify("READY=1"), "no NOTIFY_SOCKET: nothing is sent")
        #expect(SystemdNotifier(environment: ["WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"]).watchdogInterval == nil, "another process's watchdog")
        let deadline = Date().addingTimeInterval(5)
        while socket.messages.isEmpty && Date() < deadline { usleep(10_000) }
        #expect(socket.messages == ["READY=1\nSTATUS=hello"])
    }

    @Test func daemonLifecycleMessages() async throws {
        let sandbox = try Sandbox()
        try sandbox.writeConfig()
        let socket = try NotifySocket(path: sandbox.root + "/notify.sock")
        let daemon = try sandbox.start(["serve"], environment: ["NOTIFY_SOCKET": socket.path, "WATCHDOG_USEC": "200000"])
        try await eventually("READY=1") { socket.messages.contains { $0.hasPrefix("READY=1") } }
        try await eventually("the daemon to trap SIGHUP") { daemon.stderr.contains("SIGHUP reloads") }
        // READY=1 first, on its own: it never waits for the queue to be counted.
        #expect(socket.messages.first == "READY=1", "\(socket.messages)")
        try await eventually("the first status line") { socket.messages.dropFirst().first?.hasPrefix("STATUS=0 pending") == true }
        try await eventually("watchdog pings") { socket.messages.filter { $0.contains("WATCHDOG=1") }.count >= 3 }
        #expect(socket.messages.contains { $0.hasPrefix("STATUS=") && $0.contains("sent since start") })

        daemon.signal(SIGHUP)
        try await eventually("a reload") { socket.messages.contains { $0.hasPrefix("RELOADING=1\nMONOTONIC_USEC=") } }
        try await eventually("READY=1 after the reload") {
            let m = socket.messages
            guard let i = m.lastIndex(where: { $0.hasPrefix("RELOADING=1") }) else { return false }
            return m[(i + 1)...].contains("READY=1")
        }
        daemon.signal(SIGTERM)
        #expect(try await daemon.wait() == 0)
        #expect(socket.messages.contains { $0.hasPrefix("STOPPING=1") })
    }

    @Test func reloadPutsValidTemplatesInForceAndRefusesInvalidOnes() async throws {
        let sandbox = try Sandbox()
        let templates = try sandbox.copyShippedTemplates()
        try sandbox.writeConfig(templates: templates)
        let sms = templates + "/fr/reminder_1/sms.txt.mustache"
        let daemon = try sandbox.start(["serve"])
        try await eventually("the daemon to trap SIGHUP") { daemon.stderr.contains("SIGHUP reloads") }
        func sendAndRead(_ id: String) async throws -> String {
            try sandbox.dropLines("\(id).jsonl", [SMSIntegrationTests.smsReminder(id, phone: "+33612345678")])
            var text = ""
            try await eventually("\(id) in the SMS outbox") {
                let lines = jsonLines(sandbox.root + "/outbox/sms.jsonl")
                text = lines.first { $0["reminder_id"] as? String == id }?["text"] as? String ?? ""
                return !text.isEmpty
            }
            return text
        }

        try "{{creditor.name}} : version 2, {{total}} à régler.".write(toFile: sms, atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        try await eventually("the reload") { daemon.stderr.contains("reloaded configuration, templates, transports and webhook secrets") }
        #expect(try await sendAndRead("R1") == "Exemple SAS : version 2, 1 234,50 € à régler.")

        try "{{creditor.name}} : {{montant_inconnu}}".write(toFile: sms, atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        try await eventually("the refusal") { daemon.stderr.contains("reload refused: the new configuration or templates are invalid") }
        #expect(daemon.stderr.contains("montant_inconnu"))
        #expect(try await sendAndRead("R2") == "Exemple SAS : version 2, 1 234,50 € à régler.", "the previous templates stay in force")

        let good = try String(contentsOfFile: sandbox.configPath, encoding: .utf8)
        try (good + "\nbogus_key: 1\n").write(toFile: sandbox.configPath, atomically: true, encoding: .utf8)
        daemon.signal(SIGHUP)
        try await eventually("the configuration refusal") {
            daemon.stderr.components(separatedBy: "reload refused: the new configuration or templates are invalid").count == 3
                && daemon.stderr.contains("unknown key 'bogus_key'")
        }
        #expect(daemon.process.isRunning)
        daemon.signal(SIGTERM)
        #expect(try await daemon.wait() == 0)
    }
}
