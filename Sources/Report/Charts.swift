import Foundation

/// Small inline SVG charts: no script, no external font or image.
enum Charts {
    /// A histogram of `values` in at most `binCount` equal bins, labelled with the range.
    static func histogram(_ title: String, values: [Double], unit: String, binCount: Int = 20) -> String {
        let width = 260.0, height = 70.0
        var svg = "<div class=\"chart\"><h4>\(HTML.text(title))</h4>"
        svg += "<svg width=\"\(Int(width))\" height=\"\(Int(height) + 14)\" role=\"img\" aria-label=\"\(HTML.attribute(title))\">"
        guard let low = values.min(), let high = values.max() else {
            return svg + "<text x=\"4\" y=\"14\">no data</text></svg></div>"
        }
        let bins = high > low ? binCount : 1
        let span = max(high - low, 1e-9)
        var counts = [Int](repeating: 0, count: bins)
        for value in values { counts[min(bins - 1, Int((value - low) / span * Double(bins)))] += 1 }
        let tallest = Double(counts.max() ?? 1)
        let barWidth = width / Double(bins)
        for (index, count) in counts.enumerated() where count > 0 {
            let barHeight = max(1, Double(count) / tallest * height)
            let from = low + span * Double(index) / Double(bins), to = low + span * Double(index + 1) / Double(bins)
            svg += String(format: "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">", Double(index) * barWidth,
                          height - barHeight, max(1, barWidth - 1), barHeight)
            svg += "<title>\(format(from))–\(format(to)) \(HTML.text(unit)): \(count)</title></rect>"
        }
        svg += "<text x=\"0\" y=\"\(Int(height) + 12)\">\(format(low)) \(HTML.text(unit))</text>"
        svg += "<text x=\"\(Int(width))\" y=\"\(Int(height) + 12)\" text-anchor=\"end\">\(format(high))</text></svg></div>"
        return svg
    }

    /// One horizontal bar split by exit status, widest first.
    static func statusBar(_ counts: [String: Int]) -> String {
        let total = Double(max(1, counts.values.reduce(0, +)))
        let width = 320.0
        var x = 0.0
        var svg = "<svg width=\"\(Int(width))\" height=\"14\" role=\"img\" aria-label=\"exit statuses\">"
        for (status, count) in counts.sorted(by: { ($0.value, $1.key) > ($1.value, $0.key) }) {
            let share = Double(count) / total * width
            let kind = status == "submitted" ? "s-submitted" : status.hasSuffix("error") ? "s-error" : "s-other"
            svg += "<rect class=\"\(kind)\" " + String(format: "x=\"%.1f\" y=\"0\" width=\"%.1f\" height=\"14\">", x, share)
            svg += "<title>\(HTML.text(status)): \(count)</title></rect>"
            x += share
        }
        return svg + "</svg>"
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(format: "%.1f", value)
    }
}
