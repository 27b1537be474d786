import Foundation
import Testing
@testable import Agent

/// The hand-made timestamp is the ISO 8601 form Foundation's formatter wrote before it.
@Suite struct TrajectoryTimestampTests {
    @Test func matchesFoundationsISO8601WithMilliseconds() {
        let style = Date.ISO8601FormatStyle().year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted)
        var generator = SystemRandomNumberGenerator()
        var dates = [Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 951_782_400.999), Date(timeIntervalSince1970: 1_796_605_004.0005),
                     Date(timeIntervalSince1970: 4_102_444_799.9999)]
        for _ in 0..<2_000 { dates.append(Date(timeIntervalSince1970: Double.random(in: 0..<4_102_444_800, using: &generator))) }
        for date in dates {
            #expect(timestamp(date) == date.formatted(style), "\(date.timeIntervalSince1970)")
        }
    }
}
