import Foundation
import Synchronization
import Testing

@testable import RelanceTransport

/// A small HTTP/1.1 server on a real loopback socket: one thread per connection, keep-alive, each
/// request answered after `delay` (or, with `hangUp`, the connection closed once the request is read).
/// It counts connections and the most requests under way at once.
final class CountingHTTPServer: Sendable {
    struct Counts {
        var connections = 0
        var requests = 0
        var inFlight = 0
        var maxInFlight = 0
    }

    /// The counts, shared with the connection threads.
    final class Tally: Sendable {
        let counts = Mutex(Counts())
    }

    let port: Int
    private let fd: Int32
    let tally = Tally()
    var counts: Counts { tally.counts.withLock { $0 } }

    init(delay: Duration = .zero, hangUp: Bool = false) {
        let (listening, port) = bindLoopback()
        listen(listening, 64)
        self.fd = listening
        self.port = port
        Thread.detachNewThread { [tally] in
            while true {
                let client = accept(listening, nil, nil)
                guard client >= 0 else { return }
                tally.counts.withLock { $0.connections += 1 }
                Thread.detachNewThread {
                    Self.serve(client, tally: tally, delay: delay, hangUp: hangUp)
                }
            }
        }
    }

    deinit {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    static func serve(_ client: Int32, tally: Tally, delay: Duration, hangUp: Bool) {
        defer { close(client) }
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        while true {
            // Read one request: headers, then Content-Length bytes of body.
            var headerEnd: Int?
            var bodyLength = 0
            while true {
                if headerEnd == nil, let end = pending.firstRange(of: Array("\r\n\r\n".utf8))?.upperBound {
                    headerEnd = end
                    let head = String(decoding: pending[..<end], as: UTF8.self).lowercased()
                    if let line = head.split(separator: "\r\n").first(where: { $0.hasPrefix("content-length:") }) {
                        bodyLength = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
                    }
                }
                if let headerEnd, pending.count >= headerEnd + bodyLength { break }
                let n = read(client, &buffer, buffer.count)
                if n <= 0 { return }
                pending += buffer[0..<n]
            }
            pending.removeFirst((headerEnd ?? 0) + bodyLength)
            tally.counts.withLock {
                $0.requests += 1
                $0.inFlight += 1
                $0.maxInFlight = max($0.maxInFlight, $0.inFlight)
            }
            if hangUp { return }
            if delay > .zero { Thread.sleep(forTimeInterval: Double(delay.components.attoseconds) / 1e18 + Double(delay.components.seconds)) }
            tally.counts.withLock { $0.inFlight -= 1 }
            let body = #"{"sid":"SM1","status":"queued"}"#
            let response =
                "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-Test:  padded value \r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
            _ = response.withCString { write(client, $0, strlen($0)) }
        }
    }
}

@Suite struct HTTPClientTests {
    static func post(_ port: Int) -> HTTPClient.Request {
        HTTPClient.Request(
            method: "POST", url: "http://127.0.0.1:\(port)/2010-04-01/Accounts/AC1/Messages.json",
            headers: ["Content-Type": "application/x-www-form-urlencoded"], body: Data("To=%2B33612345678&Body=hello".utf8),
            basicAuth: .init(user: "AC1", password: "secret"))
    }

    @Test func manyRequestsShareAFewKeptAliveConnections() async throws {
        let server = CountingHTTPServer(delay: .milliseconds(5))
        let client = try HTTPClient(configuration: HTTPClientConfiguration(connections: 3, timeout: .seconds(10)))
        let statuses = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<60 {
                group.addTask {
                    switch await client.execute(Self.post(server.port)) {
                    case .success(let response): return response.status
                    case .failure: return -1
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(statuses.count == 60 && statuses.allSatisfy { $0 == 201 })
        let counts = server.counts
        #expect(counts.requests == 60)
        #expect(counts.maxInFlight <= 3, "at most `connections` requests at once")
        #expect(counts.maxInFlight >= 2, "requests do overlap")
        #expect(counts.connections <= 3, "connections are reused, not one per request")
    }

    /// Requests queued behind a single connection start as soon as it is free, not at the loop's
    /// next idle timeout. A hang check, not a speed test: the idle timeout is made 10 minutes here,
    /// so a queued request left waiting for it takes 10 minutes, while all five take milliseconds
    /// (up to some twenty seconds when the whole suite starts at once on two cores).
    @Test func queuedRequestsStartAsSoonAsAConnectionFrees() async throws {
        let server = CountingHTTPServer()
        let client = try HTTPClient(configuration: HTTPClientConfiguration(connections: 1), idleWait: .seconds(600))
        let started = ContinuousClock.now
        let ok = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<5 { group.addTask { (try? await client.execute(Self.post(server.port)).get().status) == 201 } }
            return await group.allSatisfy { $0 }
        }
        #expect(ok)
        #expect(ContinuousClock.now - started < .seconds(300), "a queued request waited for the idle timeout")
    }

    /// The loop is woken once per sleep, not once per request: requests submitted while it sleeps,
    /// alone or in bursts from many tasks, all start. A hang check as above: a request whose wakeup
    /// was lost would wait for the 10-minute idle timeout.
    @Test func requestsSubmittedWhileTheLoopSleepsAllStart() async throws {
        let server = CountingHTTPServer()
        let client = try HTTPClient(configuration: HTTPClientConfiguration(connections: 2), idleWait: .seconds(600))
        let started = ContinuousClock.now
        var answered = 0
        for round in 0..<20 {
            // Each round starts on a loop with nothing to do, asleep in its poll.
            let burst = round % 2 == 0 ? 1 : 7
            answered += await withTaskGroup(of: Int.self) { group in
                for _ in 0..<burst { group.addTask { (try? await client.execute(Self.post(server.port)).get().status) == 201 ? 1 : 0 } }
                return await group.reduce(0, +)
            }
        }
        #expect(answered == 10 * 1 + 10 * 7)
        #expect(server.counts.requests == 80)
        #expect(ContinuousClock.now - started < .seconds(300), "a request waited for the idle timeout: its wakeup was lost")
    }

    @Test func theResponseIsReadWithItsHeaders() async throws {
        let server = CountingHTTPServer()
        let client = try HTTPClient(configuration: HTTPClientConfiguration(connections: 1))
        let response = try await client.execute(Self.post(server.port)).get()
        #expect(response.status == 201)
        #expect(response.headers["x-test"] == "padded value")
        #expect(response.headers["content-type"] == "application/json")
        #expect(String(decoding: response.body, as: UTF8.self) == #"{"sid":"SM1","status":"queued"}"#)
    }

    @Test func nothingListeningFailsBeforeAnythingWasSent() async throws {
        let (fd, port) = bindLoopback()
        close(fd)
        let client = try HTTPClient(configuration: HTTPClientConfiguration(connections: 2, connectTimeout: .seconds(2)))
        guard case .failure(let error) = await client.execute(Self.post(port)) else {
            Issue.record("a request to a closed port succeeded")
            return
        }
        #expect(!error.afterRequestSent)
    }

    @Test func aConnectionClosedAfterTheWholeRequestIsInDoubt() async throws {
        let server = CountingHTTPServer(hangUp: true)
        let client = try HTTPClient(configuration: HTTPClientConfiguration(connections: 1, timeout: .seconds(5)))
        guard case .failure(let error) = await client.execute(Self.post(server.port)) else {
            Issue.record("a request whose connection was closed succeeded")
            return
        }
        #expect(error.afterRequestSent, "the whole body went out and no answer came: \(error)")
    }

    @Test func aReleasedClientStopsItsThread() async throws {
        let server = CountingHTTPServer()
        weak var loop: CurlMultiLoop<HTTPSlot>?
        do {
            let client = try HTTPClient(configuration: HTTPClientConfiguration(connections: 2))
            loop = client.loop
            #expect(try await client.execute(Self.post(server.port)).get().status == 201)
        }
        // The loop thread holds its loop until it returns: the loop is freed once the thread is done.
        let deadline = ContinuousClock.now + .seconds(10)
        while loop != nil && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(loop == nil, "the loop thread of a released client is gone")
        #expect(server.counts.requests == 1)
    }
}
