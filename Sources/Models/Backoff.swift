import Foundation

/// Waits between attempts: exponential back-off with jitter, or what the server asked for.
enum Backoff {
    /// The wait before retry number `retry` (1 for the first retry): `base * 2^(retry-1)`,
    /// capped at `max`, scaled by a random factor in [0.5, 1] so clients that failed together
    /// do not retry together.
    static func delay(retry: Int, base: Double, max: Double, random: Double = Double.random(in: 0.5...1)) -> Double {
        let exponent = Swift.min(Swift.max(retry - 1, 0), 30)
        let raw = Swift.min(base * pow(2, Double(exponent)), max)
        return Swift.max(0, raw * random)
    }

    /// Seconds to wait from `Retry-After` (delta-seconds or an HTTP date) or `retry-after-ms`,
    /// capped at `cap`; nil when absent or unreadable.
    static func retryAfter(headers: [(String, String)], now: Date = Date(), cap: Double) -> Double? {
        var seconds: Double?
        for (name, value) in headers {
            let value = value.trimmingWhitespace()
            switch name.lowercased() {
            case "retry-after-ms":
                if let ms = Double(value), ms.isFinite { seconds = ms / 1000 }
            case "retry-after" where seconds == nil:
                if let s = Double(value), s.isFinite {
                    seconds = s
                } else if let date = httpDate(value) {
                    seconds = date.timeIntervalSince(now)
                }
            default:
                continue
            }
        }
        guard let seconds else { return nil }
        return Swift.min(Swift.max(seconds, 0), cap)
    }

    /// Parses the three date formats HTTP allows (RFC 9110 section 5.6.7).
    static func httpDate(_ text: String) -> Date? {
        let formats = ["EEE, dd MMM yyyy HH:mm:ss zzz", "EEEE, dd-MMM-yy HH:mm:ss zzz", "EEE MMM d HH:mm:ss yyyy"]
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        for format in formats {
            formatter.dateFormat = format
            if let date = formatter.date(from: text) { return date }
        }
        return nil
    }
}
