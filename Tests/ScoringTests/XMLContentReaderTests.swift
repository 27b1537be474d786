import Foundation
import Testing
import WardenCore

#if canImport(FoundationXML)
import FoundationXML
#endif

@testable import Scoring

/// The hand-written reader against libxml2 (through FoundationXML's `XMLParser`, which only the
/// tests link): the same element events, in the same order, with the same attributes.
@Suite("XML content reader")
struct XMLContentReaderTests {
    enum Event: Equatable, CustomStringConvertible {
        case start(String, [String: String])
        case end(String)

        var description: String {
            switch self {
            case .start(let name, let attributes): "<\(name) \(attributes.sorted { $0.key < $1.key })>"
            case .end(let name): "</\(name)>"
            }
        }
    }

    /// Our reader's events and whether it read to the end without an error.
    static func readerEvents(_ content: String) -> ([Event], Bool) {
        var events: [Event] = []
        let error = XMLContentReader.read(content.utf8, start: { events.append(.start($0, $1)) }, end: { events.append(.end($0)) })
        return (events, error == nil)
    }

    /// libxml2's events for the same content wrapped in a root element, the root's own left out.
    static func libxml2Events(_ content: String) -> ([Event], Bool) {
        final class Recorder: NSObject, XMLParserDelegate {
            var events: [Event] = []
            func parser(
                _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                qualifiedName: String?, attributes: [String: String] = [:]
            ) { events.append(.start(elementName, attributes)) }
            func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
                events.append(.end(elementName))
            }
        }
        let recorder = Recorder()
        let parser = XMLParser(data: Data(("<root>" + content + "</root>").utf8))
        parser.delegate = recorder
        let succeeded = parser.parse()
        var events = recorder.events
        if events.first == .start("root", [:]) { events.removeFirst() }
        if succeeded, events.last == .end("root") { events.removeLast() }
        return (events, succeeded)
    }

    /// Random well-formed content in the shapes JUnit writers produce and a few they rarely do.
    struct DocumentGenerator {
        var random: SplitMix64
        static let names = ["testsuites", "testsuite", "testcase", "failure", "error", "skipped", "system-out", "properties", "property", "ns:x", "a.b-c_d9", "é漢"]
        static let attributeNames = ["name", "classname", "file", "type", "message", "time", "x:y", "_z"]
        static let textPieces = [
            "plain", " ", "\t", "\n", "\r\n", "\r", "&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#65;", "&#x1F600;",
            "&#10;", "&#9;", "&#13;", "é", "漢字", "🙂", ">", "\"", "'", "]", "]]", "a]b", "?", "-", "--", "\u{85}",
        ]

        mutating func content(depth: Int) -> String {
            var out = ""
            for _ in 0..<Int.random(in: 0...4, using: &random) {
                switch Int.random(in: 0..<10, using: &random) {
                case 0...4 where depth < 5: out += element(depth: depth)
                case 5: out += "<!--" + text(excluding: ["--", "-"]) + "-->"
                case 6: out += "<![CDATA[" + cdata() + "]]>"
                case 7: out += "<?pi " + text(excluding: ["?"]) + "?>"
                default: out += text(excluding: [">", "]]", "]", "a]b"], escapeMarkup: true)
                }
            }
            return out
        }

        mutating func element(depth: Int) -> String {
            let name = Self.names.randomElement(using: &random)!
            var tag = "<" + name
            for attribute in Self.attributeNames.shuffled(using: &random).prefix(Int.random(in: 0...3, using: &random)) {
                let quote = Bool.random(using: &random) ? "\"" : "'"
                let value = text(excluding: [quote, "]]"], escapeMarkup: true)
                tag += [" ", "  ", "\n", "\t"].randomElement(using: &random)! + attribute
                tag += ["=", " = ", "=\n"].randomElement(using: &random)! + quote + value + quote
            }
            tag += ["", " ", "\n"].randomElement(using: &random)!
            if Bool.random(using: &random) { return tag + "/>" }
            return tag + ">" + content(depth: depth + 1) + "</" + name + ["", " ", "\n"].randomElement(using: &random)! + ">"
        }

        mutating func text(excluding excluded: [String], escapeMarkup: Bool = false) -> String {
            var out = ""
            for _ in 0..<Int.random(in: 0...5, using: &random) {
                let piece = Self.textPieces.randomElement(using: &random)!
                if excluded.contains(piece) || (!escapeMarkup && piece.hasPrefix("&")) { continue }
                out += piece
            }
            if excluded.contains("-"), out.hasSuffix("-") { out += "x" }
            if excluded.contains("?") { out = out.replacingOccurrences(of: "?", with: "") }
            return out
        }

        mutating func cdata() -> String {
            ["", "<a>", "&notanentity;", "]", "]]", "x < y && z", "\n"].shuffled(using: &random).prefix(3).joined()
        }
    }

    @Test("random well-formed documents: the same events as libxml2")
    func matchesLibxml2OnWellFormedDocuments() {
        var generator = DocumentGenerator(random: SplitMix64(seed: 0x584D_4C)) // "XML"
        var checked = 0
        for _ in 0..<2_000 {
            let content = generator.content(depth: 0)
            let expected = Self.libxml2Events(content)
            #expect(expected.1, "the generator made a document libxml2 rejects: \(content.debugDescription)")
            guard expected.1 else { continue }
            let actual = Self.readerEvents(content)
            #expect(actual.1, "rejected a document libxml2 reads: \(content.debugDescription)")
            #expect(actual.0 == expected.0, "\(content.debugDescription)")
            checked += expected.0.count
        }
        #expect(checked > 5_000)
    }

    @Test(
        "malformed content: an error, after the events libxml2 reports before it",
        arguments: [
            "<a><b></a>", "<a x='1' x='2'/>", "<a x='1'y='2'/>", "<a>&nbsp;</a><b/>", "<a>&#0;</a>", "<a>&#xD800;</a>",
            "<a>&#x41</a>", "<a>& b</a>", "<a x=1/>", "<a x='<'/>", "<a>]]></a>", "<a><!-- x -- y --></a>",
            "<a><?xml version='1.0'?></a>", "<!DOCTYPE a><a/>", "<a>\u{1}</a>", "<a/></b>", "<a>", "<a x='1", "<1a/>",
            "<a/><b><c/>&bogus;<d/></b>", "<a><![CDATA[never closed</a>", "</a>", "<a>&#X41;</a>", "<a>&#+65;</a>",
        ])
    func matchesLibxml2OnMalformedContent(content: String) {
        // libxml2 recovers from some errors and reads on; the reader stops at the first.
        let expected = Self.libxml2Events(content)
        let actual = Self.readerEvents(content)
        #expect(!actual.1)
        #expect(expected.0.starts(with: actual.0), "\(actual.0) against \(expected.0)")
    }

    @Test("a JUnit report cut off mid-document keeps the test cases before the cut")
    func truncatedReport() {
        let parsed = LogParser.junit.parse("""
            <testsuite name="s"><testcase classname="a" name="one"/><testcase classname="a" name="two">
            <failure message="boom &amp; more"/></testcase><testcase classname="a" name="thr
            """)
        #expect(parsed.statuses == ["a.one": .passed, "a.two": .failed])
    }
}
