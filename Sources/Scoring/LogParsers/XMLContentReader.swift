/// A streaming reader for XML element content: the part of XML that JUnit reports use, read without
/// libxml2. FoundationXML's `XMLParser` would link libxml2 (and through it libicu and liblzma)
/// into every `warden` process, which cost 1.6 ms of dynamic loading at each start for a parser
/// that only the JUnit log format needs.
///
/// It reads elements with attributes, self-closing tags, text, the five predefined entities and
/// character references, CDATA sections, comments and processing instructions. Like a conforming
/// parser it stops at the first well-formedness error (a mismatched tag, an unknown entity, a
/// duplicated attribute, a character XML forbids), after reporting everything before it. DTDs are
/// not supported: a `<!DOCTYPE` is an error.
struct XMLContentReader {
    /// Where and why reading stopped early.
    struct WellFormednessError: Error, Equatable {
        var offset: Int
        var reason: String
    }

    private let bytes: [UInt8]
    private var index = 0
    private var openElements: [String] = []

    /// Reads `utf8` as the content of an element: any number of elements, text, comments, CDATA
    /// sections and processing instructions. `start` and `end` are called as elements open and
    /// close; a self-closing element reports both. Returns the first error, or nil.
    static func read(
        _ utf8: some Sequence<UInt8>,
        start: (_ name: String, _ attributes: [String: String]) -> Void,
        end: (_ name: String) -> Void
    ) -> WellFormednessError? {
        var reader = XMLContentReader(bytes: Array(utf8))
        do {
            try reader.readContent(start: start, end: end)
            return nil
        } catch {
            return error
        }
    }

    private init(bytes: [UInt8]) { self.bytes = bytes }

    private mutating func readContent(
        start: (String, [String: String]) -> Void, end: (String) -> Void
    ) throws(WellFormednessError) {
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "<"):
                if hasPrefix("<!--") {
                    try skipComment()
                } else if hasPrefix("<![CDATA[") {
                    try skip(past: "]]>", from: index + 9, what: "CDATA section")
                } else if hasPrefix("<?") {
                    try skipProcessingInstruction()
                } else if hasPrefix("<!") {
                    throw fail("markup declarations (<!DOCTYPE and the like) are not supported")
                } else if hasPrefix("</") {
                    let name = try readEndTag()
                    guard let open = openElements.last else { throw fail("</\(name)> closes no open element") }
                    guard open == name else { throw fail("</\(name)> does not match <\(open)>") }
                    openElements.removeLast()
                    end(name)
                } else {
                    let (name, attributes, selfClosing) = try readStartTag()
                    start(name, attributes)
                    if selfClosing { end(name) } else { openElements.append(name) }
                }
            case UInt8(ascii: "&"):
                _ = try readReference()
            case UInt8(ascii: "]") where hasPrefix("]]>"):
                throw fail("']]>' outside a CDATA section")
            case let byte:
                try checkCharacter(byte)
                index += 1
            }
        }
        if let open = openElements.last { throw fail("<\(open)> is never closed") }
    }

    // MARK: Markup

    /// `<name attr="value" ...>` or `<name .../>`, with entities in values decoded and literal
    /// tabs and line ends normalized to spaces as XML's attribute-value normalization requires.
    private mutating func readStartTag() throws(WellFormednessError) -> (String, [String: String], Bool) {
        index += 1
        let name = try readName()
        var attributes: [String: String] = [:]
        while true {
            let hadSpace = skipWhitespace()
            guard index < bytes.count else { throw fail("<\(name) is cut off") }
            switch bytes[index] {
            case UInt8(ascii: ">"):
                index += 1
                return (name, attributes, false)
            case UInt8(ascii: "/"):
                guard hasPrefix("/>") else { throw fail("'/' in <\(name)> not followed by '>'") }
                index += 2
                return (name, attributes, true)
            default:
                guard hadSpace else { throw fail("attributes of <\(name)> must be separated by white space") }
                let attribute = try readName()
                skipWhitespace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "=") else {
                    throw fail("attribute \(attribute) of <\(name)> has no value")
                }
                index += 1
                skipWhitespace()
                let value = try readAttributeValue()
                guard attributes.updateValue(value, forKey: attribute) == nil else {
                    throw fail("attribute \(attribute) of <\(name)> is repeated")
                }
            }
        }
    }

    private mutating func readAttributeValue() throws(WellFormednessError) -> String {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") || bytes[index] == UInt8(ascii: "'") else {
            throw fail("an attribute value must be quoted")
        }
        let quote = bytes[index]
        index += 1
        var value: [UInt8] = []
        while true {
            guard index < bytes.count else { throw fail("an attribute value is never closed") }
            let byte = bytes[index]
            switch byte {
            case quote:
                index += 1
                return String(decoding: value, as: UTF8.self)
            case UInt8(ascii: "<"):
                throw fail("'<' inside an attribute value")
            case UInt8(ascii: "&"):
                value.append(contentsOf: try readReference().utf8)
            case UInt8(ascii: "\r"):
                // A CR LF pair is one line end, hence one space.
                index += hasPrefix("\r\n") ? 2 : 1
                value.append(UInt8(ascii: " "))
            case UInt8(ascii: "\n"), UInt8(ascii: "\t"):
                index += 1
                value.append(UInt8(ascii: " "))
            default:
                try checkCharacter(byte)
                value.append(byte)
                index += 1
            }
        }
    }

    private mutating func readEndTag() throws(WellFormednessError) -> String {
        index += 2
        let name = try readName()
        skipWhitespace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: ">") else { throw fail("</\(name) is not closed by '>'") }
        index += 1
        return name
    }

    private mutating func skipComment() throws(WellFormednessError) {
        let bodyStart = index + 4
        guard let close = find("--", from: bodyStart) else { throw fail("a comment is never closed") }
        guard close + 2 < bytes.count, bytes[close + 2] == UInt8(ascii: ">") else { throw fail("'--' inside a comment") }
        try checkCharacters(bodyStart..<close)
        index = close + 3
    }

    /// `<?target ...?>`. The target `xml`, in any case, is reserved for the declaration that may
    /// only open a document.
    private mutating func skipProcessingInstruction() throws(WellFormednessError) {
        index += 2
        let target = try readName()
        guard target.lowercased() != "xml" else { throw fail("an XML declaration inside the document") }
        try skip(past: "?>", from: index, what: "processing instruction <?\(target)")
    }

    private mutating func skip(past terminator: String, from start: Int, what: String) throws(WellFormednessError) {
        guard let close = find(terminator, from: start) else { throw fail("a \(what) is never closed") }
        try checkCharacters(start..<close)
        index = close + terminator.utf8.count
    }

    // MARK: Lexical pieces

    /// A name: ASCII letters, `_`, `:` or any non-ASCII character first, then also digits, `-`
    /// and `.`.
    private mutating func readName() throws(WellFormednessError) -> String {
        let start = index
        while index < bytes.count {
            let byte = bytes[index]
            let isStart = (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z")
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ":") || byte >= 0x80
            let isLater = byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
            guard isStart || (isLater && index > start) else { break }
            index += 1
        }
        guard index > start else { throw fail("a name was expected") }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    /// `&amp;` and the other predefined entities, `&#NN;` and `&#xHH;`.
    private mutating func readReference() throws(WellFormednessError) -> String {
        guard let semicolon = find(";", from: index + 1), semicolon - index <= 12 else {
            throw fail("'&' does not start an entity or character reference")
        }
        let body = String(decoding: bytes[(index + 1)..<semicolon], as: UTF8.self)
        let text: String
        switch body {
        case "amp": text = "&"
        case "lt": text = "<"
        case "gt": text = ">"
        case "quot": text = "\""
        case "apos": text = "'"
        default:
            var digits = Substring(body)
            guard digits.first == "#" else { throw fail("entity &\(body); is not defined") }
            digits = digits.dropFirst()
            var radix = 10
            if digits.first == "x" {
                radix = 16
                digits = digits.dropFirst()
            }
            guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isHexDigit }), let value = UInt32(digits, radix: radix),
                let scalar = Unicode.Scalar(value), Self.isXMLCharacter(scalar.value)
            else { throw fail("&\(body); is not a character XML allows") }
            text = String(Character(scalar))
        }
        index = semicolon + 1
        return text
    }

    @discardableResult
    private mutating func skipWhitespace() -> Bool {
        let start = index
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        return index > start
    }

    /// XML forbids the C0 controls other than tab and the line ends. The input is a Swift string,
    /// so its UTF-8 is already valid.
    private func checkCharacter(_ byte: UInt8) throws(WellFormednessError) {
        guard byte >= 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D else {
            throw fail("control character 0x\(String(byte, radix: 16)) is not allowed in XML")
        }
    }

    private func checkCharacters(_ range: Range<Int>) throws(WellFormednessError) {
        for position in range { try checkCharacter(bytes[position]) }
    }

    private static func isXMLCharacter(_ value: UInt32) -> Bool {
        value == 0x9 || value == 0xA || value == 0xD || (0x20...0xD7FF).contains(value)
            || (0xE000...0xFFFD).contains(value) || (0x10000...0x10FFFF).contains(value)
    }

    private func hasPrefix(_ prefix: StaticString) -> Bool {
        let count = prefix.utf8CodeUnitCount
        guard index + count <= bytes.count else { return false }
        return prefix.withUTF8Buffer { prefix in
            (0..<count).allSatisfy { bytes[index + $0] == prefix[$0] }
        }
    }

    private func find(_ needle: String, from start: Int) -> Int? {
        let needle = Array(needle.utf8)
        var position = start
        while position + needle.count <= bytes.count {
            if bytes[position] == needle[0], bytes[position..<(position + needle.count)].elementsEqual(needle) {
                return position
            }
            position += 1
        }
        return nil
    }

    private func fail(_ reason: String) -> WellFormednessError {
        WellFormednessError(offset: index, reason: reason)
    }
}
