import RelanceCore

/// How many deliveries the due walk may hand out of each queue (its share of the concurrency, less
/// what it has in flight) and on each channel (its rate limit, its provider's pause): a queue or a
/// channel without room is not read, so its backlog never hides the others' work.
public struct DueRoom: Sendable {
    public var queue: @Sendable (String) -> Int
    public var channel: @Sendable (Channel) -> Int

    public init(queue: @escaping @Sendable (String) -> Int, channel: @escaping @Sendable (Channel) -> Int) {
        self.queue = queue
        self.channel = channel
    }

    /// No share, no rate limit (tools, tests).
    public static let unlimited = DueRoom(queue: { _ in .max }, channel: { _ in .max })

    /// What is left of it during one walk: each queue and channel is asked once, then counted down
    /// by what the walk takes.
    public struct Left {
        let room: DueRoom
        var queues: [String: Int] = [:]
        var channels: [Channel: Int] = [:]

        public init(_ room: DueRoom) { self.room = room }

        /// How many rows of the (queue, channel) range the walk may take now.
        public mutating func wanted(queue: String, channel: Channel) -> Int {
            let q = queues[queue] ?? max(0, room.queue(queue))
            let c = channels[channel] ?? max(0, room.channel(channel))
            queues[queue] = q
            channels[channel] = c
            return min(q, c)
        }

        /// The walk took `count` rows of the range.
        public mutating func took(_ count: Int, queue: String, channel: Channel) {
            queues[queue, default: 0] -= count
            channels[channel, default: 0] -= count
        }
    }
}

extension Ledger.Due {
    /// Appends the deliveries one (priority, band) gave, read range by range, to `result` oldest
    /// first (then by reminder id and channel), at most one per debtor across ranges (a debtor
    /// may wait in two queues, on two channels), until `result` holds `limit`.
    public static func merge(_ candidates: [(dueAt: Double, due: Ledger.Due)], into result: inout [Ledger.Due], debtors: inout Set<String>, limit: Int) {
        var candidates = candidates
        if candidates.count > 1 {
            candidates.sort { a, b in
                (a.dueAt, a.due.key.reminderID, a.due.key.channel.rawValue) < (b.dueAt, b.due.key.reminderID, b.due.key.channel.rawValue)
            }
        }
        for (_, due) in candidates where result.count < limit {
            guard debtors.insert(due.reminder.debtor.id).inserted else { continue }
            result.append(due)
        }
    }
}
