import Foundation
import RelanceCore

/// One reply of an SMTP server (RFC 5321 §4.2): its code and its lines' texts.
struct SMTPReply: Sendable, Hashable {
    var code: Int
    /// Each line without its code and separator.
    var lines: [String]

    /// The reply as it came, its lines joined (for receipts and error messages).
    var text: String { lines.map { "\(code) \($0)" }.joined(separator: " / ") }
}

/// Splits what an SMTP server sends into replies. Bounded: a line longer than `maxLine` octets
/// or a reply of more than `maxLines` lines is a protocol error, not a reason to buffer without
/// end.
struct SMTPReplyParser {
    enum Failure: Error, Equatable, CustomStringConvertible {
        case malformed(String)
        case tooLong

        var description: String {
            switch self {
            case .malformed(let line): "malformed SMTP reply line '\(line)'"
            case .tooLong: "SMTP reply too long"
            }
        }
    }

    static let maxLine = 4096
    static let maxLines = 128

    private var buffer: [UInt8] = []
    private var start = 0
    private var pending: [String] = []
    private var pendingCode = 0

    /// True when octets of an unfinished reply are buffered.
    var isEmpty: Bool { start == buffer.count && pending.isEmpty }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if start > 0, start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete reply, nil until one has arrived.
    mutating func next() throws(Failure) -> SMTPReply? {
        while let newline = buffer[start...].firstIndex(of: UInt8(ascii: "\n")) {
            var end = newline
            if end > start, buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            let line = buffer[start..<end]
            start = newline + 1
            guard line.count >= 3, line.prefix(3).allSatisfy(ASCIIDigits.isDigit),
                line.count == 3 || line[line.startIndex + 3] == UInt8(ascii: " ") || line[line.startIndex + 3] == UInt8(ascii: "-")
            else { throw .malformed(String(decoding: line.prefix(80), as: UTF8.self)) }
            let code = line.prefix(3).reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
            if !pending.isEmpty, code != pendingCode { throw .malformed(String(decoding: line.prefix(80), as: UTF8.self)) }
            pendingCode = code
            pending.append(String(decoding: line.dropFirst(4), as: UTF8.self))
            guard pending.count <= Self.maxLines else { throw .tooLong }
            if line.count == 3 || line[line.startIndex + 3] == UInt8(ascii: " ") {
                defer { pending.removeAll() }
                return SMTPReply(code: code, lines: pending)
            }
        }
        guard buffer.count - start <= Self.maxLine else { throw .tooLong }
        return nil
    }
}

/// One message's SMTP transaction (MAIL, RCPT, DATA, the content) as a pure state machine: it says
/// what to send and when to wait for a reply, and decides the outcome from the replies; the
/// connection does the I/O. With PIPELINING (RFC 2920) the three commands go in one write and
/// their replies are read together: two round trips a message instead of four.
struct SMTPTransaction {
    enum Step: Equatable {
        /// Write these octets.
        case send([UInt8])
        /// Wait for the next reply.
        case receive
        /// The transaction is over; `keepConnection` false: close it (its state is unknown, or
        /// the server is closing it).
        case done(SendOutcome, keepConnection: Bool)
    }

    private enum Phase {
        case start
        /// Waiting for the replies to MAIL, RCPT and DATA; `replies` those seen so far.
        case envelope(replies: [SMTPReply])
        /// The content went out; waiting for the reply that accepts or refuses it.
        case content
        /// An envelope command failed but DATA was accepted: an empty content was sent to close
        /// it, waiting for its reply; the outcome is the failure's.
        case closing(SMTPReply)
        case finished
    }

    let from: String
    let to: String
    let message: Data
    let pipelining: Bool
    private var phase = Phase.start

    /// The whole content and its terminating dot were handed to the connection: from here, a
    /// lost connection leaves the message in doubt (the relay may have queued it).
    private(set) var contentSent = false

    init(from: String, to: String, message: Data, pipelining: Bool) {
        self.from = from
        self.to = to
        self.message = message
        self.pipelining = pipelining
    }

    private static let commandsExpected = 3

    private func command(_ index: Int) -> String {
        switch index {
        case 0: "MAIL FROM:<\(from)>\r\n"
        case 1: "RCPT TO:<\(to)>\r\n"
        default: "DATA\r\n"
        }
    }

    mutating func start() -> Step {
        phase = .envelope(replies: [])
        if pipelining { return .send(Array((command(0) + command(1) + command(2)).utf8)) }
        return .send(Array(command(0).utf8))
    }

    /// The next step once the connection wrote what the last step asked (`send`).
    mutating func sent() -> Step {
        switch phase {
        case .content: contentSent = true
        default: break
        }
        return .receive
    }

    mutating func receive(_ reply: SMTPReply) -> Step {
        switch phase {
        case .start, .finished:
            phase = .finished
            return .done(.transient(code: reply.code, detail: "unexpected reply \(reply.text)", retryAfter: nil), keepConnection: false)
        case .envelope(var replies):
            replies.append(reply)
            let isData = replies.count == Self.commandsExpected
            let accepted = isData ? reply.code == 354 : (200..<300).contains(reply.code)
            if !pipelining {
                guard accepted else {
                    phase = .finished
                    return .done(Self.refused(reply), keepConnection: false)
                }
                if isData {
                    phase = .content
                    return .send(Self.content(of: message))
                }
                phase = .envelope(replies: replies)
                return .send(Array(command(replies.count).utf8))
            }
            guard isData else {
                phase = .envelope(replies: replies)
                return .receive
            }
            let failure = replies.prefix(2).first { !(200..<300).contains($0.code) }
            switch (failure, reply.code == 354) {
            case (nil, true):
                phase = .content
                return .send(Self.content(of: message))
            case (nil, false):
                phase = .finished
                return .done(Self.refused(reply), keepConnection: false)
            case (let refusal?, true):
                // A server must refuse DATA when no recipient was accepted (RFC 2920 §3.1); one
                // that did not gets an empty content, and the refusal stands.
                phase = .closing(refusal)
                return .send(Array(".\r\n".utf8))
            case (let refusal?, false):
                phase = .finished
                return .done(Self.refused(refusal), keepConnection: false)
            }
        case .content:
            phase = .finished
            switch reply.code {
            case 200..<300: return .done(.sent(providerID: nil, code: reply.code, detail: reply.text), keepConnection: true)
            default: return .done(Self.refused(reply), keepConnection: reply.code != 421 && (400..<600).contains(reply.code))
            }
        case .closing(let refusal):
            phase = .finished
            return .done(Self.refused(refusal), keepConnection: false)
        }
    }

    /// The outcome when the connection failed (closed, timed out, garbled) before the
    /// transaction was over.
    func connectionLost(_ detail: String) -> SendOutcome {
        if contentSent { return .inDoubt(detail: "no reply after the whole message was sent: \(detail)") }
        return .transient(code: nil, detail: detail, retryAfter: nil)
    }

    /// A refusal: 5xx permanent, anything else transient.
    static func refused(_ reply: SMTPReply) -> SendOutcome {
        switch reply.code {
        case 500..<600: .permanent(code: reply.code, detail: reply.text)
        default: .transient(code: reply.code, detail: reply.text, retryAfter: nil)
        }
    }

    /// The content as DATA carries it (RFC 5321 §4.5.2): a line that starts with a dot gets a
    /// second one, the last line ends with CRLF, then the terminating `.` line.
    static func content(of message: Data) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(message.count + 64)
        message.withUnsafeBytes { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            // Copied a line-start dot at a time (a composed message has none: one copy).
            var copied = 0
            var lineStart = 0
            while lineStart < bytes.count {
                if bytes[lineStart] == UInt8(ascii: ".") {
                    out.append(contentsOf: bytes[copied..<lineStart])
                    out.append(UInt8(ascii: "."))
                    copied = lineStart
                }
                guard let newline = bytes[lineStart...].firstIndex(of: UInt8(ascii: "\n")) else { break }
                lineStart = newline + 1
            }
            out.append(contentsOf: bytes[copied...])
        }
        if let last = out.last, last != UInt8(ascii: "\n") { out.append(contentsOf: [13, 10]) }
        out.append(contentsOf: [UInt8(ascii: "."), 13, 10])
        return out
    }

    /// Whether the capabilities of the last EHLO reply in `lines` (the server's reply lines, in
    /// order, as libcurl logged them while connecting) include `keyword`.
    static func capability(_ keyword: String, in lines: [String]) -> Bool {
        // The last EHLO reply: the run of 250 lines after the last 220 (the greeting, or the
        // go-ahead for STARTTLS, after which the client says EHLO again).
        let afterGreeting = lines.lastIndex { $0.hasPrefix("220") }.map { lines[($0 + 1)...] } ?? lines[...]
        let ehlo = afterGreeting.drop { !$0.hasPrefix("250") }.prefix { $0.hasPrefix("250") }
        return ehlo.dropFirst().contains { line in
            let words = line.dropFirst(4).split(separator: " ")
            return words.first?.uppercased() == keyword
        }
    }
}
