import Foundation
import Testing

@testable import RelanceCore

@Suite struct FlowControlTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func tokenBucketLimitsTheRate() {
        var bucket = TokenBucket(rate: 2, burst: 2)
        #expect(bucket.take(now: t0) == nil)
        #expect(bucket.take(now: t0) == nil, "a burst of 2")
        #expect(bucket.take(now: t0) == t0.addingTimeInterval(0.5), "then one every half second")
        #expect(bucket.take(now: t0.addingTimeInterval(0.5)) == nil)
        #expect(bucket.take(now: t0.addingTimeInterval(0.5)) != nil)
        // Over 10 s of constant demand, about 2 per second go through.
        var granted = 0
        for i in 0..<1000 { if bucket.take(now: t0.addingTimeInterval(1 + Double(i) * 0.01)) == nil { granted += 1 } }
        #expect((19...22).contains(granted))
    }

    @Test func unlimitedBucket() {
        var bucket = TokenBucket(rate: 0)
        for _ in 0..<1000 { #expect(bucket.take(now: t0) == nil) }
    }

    @Test func breakerOpensHalfOpensAndCloses() {
        var breaker = CircuitBreaker(threshold: 3, cooldown: .seconds(60))
        for _ in 0..<2 {
            #expect(breaker.allow(now: t0).allowed)
            breaker.record(success: false, now: t0)
        }
        #expect(!breaker.isOpen)
        breaker.record(success: false, now: t0)
        #expect(breaker.isOpen, "3 consecutive failures open it")
        #expect(breaker.allow(now: t0.addingTimeInterval(59)) == (false, t0.addingTimeInterval(60)))
        #expect(breaker.allow(now: t0.addingTimeInterval(60)).allowed, "one probe after the cooldown")
        #expect(!breaker.allow(now: t0.addingTimeInterval(60)).allowed, "only one")
        breaker.record(success: false, now: t0.addingTimeInterval(61))
        #expect(breaker.allow(now: t0.addingTimeInterval(100)) == (false, t0.addingTimeInterval(121)), "a failed probe opens it again")
        #expect(breaker.allow(now: t0.addingTimeInterval(121)).allowed)
        breaker.record(success: true, now: t0.addingTimeInterval(122))
        #expect(breaker.state == .closed(failures: 0), "a good probe closes it")
        breaker.record(success: false, now: t0)
        breaker.record(success: true, now: t0)
        breaker.record(success: false, now: t0)
        breaker.record(success: false, now: t0)
        #expect(!breaker.isOpen, "only consecutive failures count")
    }

    @Test func holdsLeaveTheOtherChannelsOpen() {
        #expect(Channel.open(held: []) == [.email, .sms])
        #expect(Channel.open(held: ["sms"]) == [.email])
        #expect(Channel.open(held: ["email", "sms"]).isEmpty)
        #expect(Channel.open(held: ["*"]).isEmpty, "* holds every channel")
        #expect(Channel.open(held: ["fax"]) == [.email, .sms], "an unknown name holds nothing")
    }
}
