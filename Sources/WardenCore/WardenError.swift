/// A failure of the harness itself, with a stable code and a message a user can act on.
///
/// Expected outcomes of an episode (non-zero exits, timeouts, failing tests) are values,
/// never errors; this type is for what stops the harness from doing its job.
public struct WardenError: Error, Sendable, CustomStringConvertible {
    /// A stable, machine-readable code such as `profile.invalid` or `jail.unsupported`.
    public var code: String
    /// What went wrong and, where possible, what to do about it.
    public var message: String
    /// The file, field or step the error is about, when there is one.
    public var context: String?

    public init(_ code: String, _ message: String, context: String? = nil) {
        self.code = code
        self.message = message
        self.context = context
    }

    public var description: String {
        if let context { return "\(context): \(message)" }
        return message
    }
}
