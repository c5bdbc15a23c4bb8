import Foundation
import RelanceCore
import Testing

@testable import RelanceTransport

func temporaryDirectory() -> String {
    let path = NSTemporaryDirectory() + "relance-transport-" + UUID().uuidString
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite struct SMTPTransportTests {
    @Test func unreachableRelayIsTransient() async throws {
        // A port nothing listens on: bind one, note it, close it.
        let (fd, port) = bindLoopback()
        close(fd)

        let transport = try SMTPTransport(
            configuration: SMTPConfiguration(url: "smtp://127.0.0.1:\(port)", startTLS: .none, connections: 1, connectTimeout: .seconds(2)))
        let outcome = await transport.send(from: "a@example.org", to: "b@example.org", message: Data("Subject: x\r\n\r\ny\r\n".utf8))
        guard case .transient(let code, let detail, _) = outcome else {
            Issue.record("expected a transient failure, got \(outcome)")
            return
        }
        #expect(code == nil)
        #expect(detail.contains("curl 7") || detail.lowercased().contains("connect"), "\(detail)")
    }

    @Test func requiredStartTLSWithoutTLSIsTransientNotABounce() async throws {
        // A server that speaks SMTP but offers no STARTTLS: libcurl must refuse to send in clear.
        let listener = try LineServer(lines: ["220 test ESMTP", "250-test\r\n250 SIZE 1000", "221 bye"])
        let transport = try SMTPTransport(
            configuration: SMTPConfiguration(
                url: "smtp://127.0.0.1:\(listener.port)", startTLS: .required, connections: 1, connectTimeout: .seconds(2), timeout: .seconds(5)))
        let outcome = await transport.send(from: "a@example.org", to: "b@example.org", message: Data("Subject: x\r\n\r\ny\r\n".utf8))
        guard case .transient = outcome else {
            Issue.record("expected a transient failure, got \(outcome)")
            return
        }
        #expect(!listener.received.contains("DATA"), "nothing was sent in clear")
    }

    @Test func poolHandsEachResourceToOneCallerAtATime() async {
        let pool = HandlePool([1, 2])
        let inUse = InUse()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<50 {
                group.addTask {
                    let r = await pool.acquire()
                    inUse.enter(r)
                    await Task.yield()
                    inUse.leave(r)
                    pool.release(r)
                }
            }
        }
        #expect(inUse.maxConcurrent <= 2)
        #expect(!inUse.sawDoubleUse)
    }
}

final class InUse: @unchecked Sendable {
    // @unchecked: every access holds `lock`.
    private let lock = NSLock()
    private var current: Set<Int> = []
    private(set) var maxConcurrent = 0
    private(set) var sawDoubleUse = false
    func enter(_ r: Int) {
        lock.withLock {
            if current.contains(r) { sawDoubleUse = true }
            current.insert(r)
            maxConcurrent = max(maxConcurrent, current.count)
        }
    }
    func leave(_ r: Int) { lock.withLock { _ = current.remove(r) } }
}

/// A scripted TCP server on loopback: sends the greeting, then one scripted reply per line received.
final class LineServer: @unchecked Sendable {
    // @unchecked: `received` is written by the server thread under `lock` and read under it.
    let port: Int
    private let fd: Int32
    private let lock = NSLock()
    private var log = ""

    var received: String { lock.withLock { log } }

    init(lines: [String]) throws {
        let (listening, port) = bindLoopback()
        listen(listening, 4)
        self.fd = listening
        self.port = port
        Thread.detachNewThread { [self] in
            let client = accept(listening, nil, nil)
            guard client >= 0 else { return }
            var replies = lines[...]
            func send(_ s: String) { _ = (s + "\r\n").withCString { write(client, $0, strlen($0)) } }
            send(replies.removeFirst())
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = read(client, &buffer, buffer.count)
                if n <= 0 { break }
                let text = String(decoding: buffer[0..<n], as: UTF8.self)
                lock.withLock { log += text }
                guard let reply = replies.popFirst() else { break }
                send(reply)
            }
            close(client)
        }
    }

    deinit { close(fd) }
}

/// A TCP socket bound to an ephemeral loopback port.
func bindLoopback() -> (fd: Int32, port: Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return (fd, Int(UInt16(bigEndian: addr.sin_port)))
}
