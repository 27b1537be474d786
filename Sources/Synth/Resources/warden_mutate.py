"""Lists syntax-tree mutations of Python files, for `warden synth`.

Run inside the jail by Warden: `python3 warden_mutate.py FILE...` (paths relative to the
working directory). Prints one JSON object per line:
{"file", "kind", "function", "line", "start", "end", "replacement"}, where start and end are
byte offsets into the file and replacement is the text that goes between them. Each edit
covers only the node's own source span, so the diff is minimal. Every mutant is compiled and
compared with the original tree: edits that do not parse or change nothing are left out.
Files that cannot be read or parsed are reported on stderr and skipped.
"""
import ast
import json
import sys

COMPARISON_FLIPS = {
    ast.Lt: ">=", ast.GtE: "<", ast.Gt: "<=", ast.LtE: ">",
    ast.Eq: "!=", ast.NotEq: "==", ast.In: "not in", ast.NotIn: "in",
    ast.Is: "is not", ast.IsNot: "is",
}
COMPARISON_TEXT = {
    ast.Lt: "<", ast.GtE: ">=", ast.Gt: ">", ast.LtE: "<=", ast.Eq: "==", ast.NotEq: "!=",
    ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not",
}
SWAPPABLE_BINARY = {ast.Sub: "-", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**", ast.LShift: "<<", ast.RShift: ">>"}
ATOMS = (ast.Name, ast.Constant, ast.Attribute, ast.Call, ast.Subscript)
REMOVABLE_ASSIGNMENTS = (ast.Assign, ast.AugAssign, ast.AnnAssign)


class Source:
    """A file's bytes with line offsets, so that ast positions become byte spans."""

    def __init__(self, data):
        self.data = data
        self.line_starts = [0]
        for index, byte in enumerate(data):
            if byte == 10:
                self.line_starts.append(index + 1)

    def offset(self, line, column):
        return self.line_starts[line - 1] + column

    def span(self, node):
        return self.offset(node.lineno, node.col_offset), self.offset(node.end_lineno, node.end_col_offset)

    def text(self, start, end):
        return self.data[start:end].decode("utf-8")

    def line_span(self, first, last):
        """Bytes of whole lines first..last, newline included."""
        end = self.line_starts[last] if last < len(self.line_starts) else len(self.data)
        return self.line_starts[first - 1], end

    def owns_lines(self, node):
        """Whether the statement alone fills its lines (no `a; b`, nothing after it)."""
        start, end = self.span(node)
        line_start, line_end = self.line_span(node.lineno, node.end_lineno)
        before = self.data[line_start:start]
        after = self.data[end:line_end]
        return before.strip() == b"" and (after.strip() == b"" or after.strip().startswith(b"#"))

    def indent(self, node):
        line_start = self.line_starts[node.lineno - 1]
        return self.data[line_start:self.offset(node.lineno, node.col_offset)].decode("utf-8")


class Mutations(ast.NodeVisitor):
    def __init__(self, path, source):
        self.path = path
        self.source = source
        self.scope = []
        self.found = []
        self.default_nodes = set()
        self.function_depth = 0

    def add(self, kind, node, start, end, replacement):
        self.found.append({
            "file": self.path, "kind": kind, "function": ".".join(self.scope) or "<module>",
            "line": node.lineno, "start": start, "end": end, "replacement": replacement,
        })

    def in_function(self):
        return self.function_depth > 0

    # Scopes

    def visit_FunctionDef(self, node):
        self.change_defaults(node)
        self.scope.append(node.name)
        self.function_depth += 1
        self.statement_block(node.body)
        self.generic_visit(node)
        self.function_depth -= 1
        self.scope.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    # Expressions

    def visit_Compare(self, node):
        if len(node.ops) == 1:
            op = type(node.ops[0])
            left_end = self.source.span(node.left)[1]
            right_start, right_end = self.source.span(node.comparators[0])
            between = self.source.text(left_end, right_start)
            if between.split() == COMPARISON_TEXT[op].split():
                text = between.replace(COMPARISON_TEXT[op], COMPARISON_FLIPS[op]) if op not in (ast.NotIn, ast.IsNot) \
                    else " " + COMPARISON_FLIPS[op] + " "
                self.add("flip_comparison", node, left_end, right_start, text)
                if op in (ast.Lt, ast.Gt, ast.LtE, ast.GtE) and isinstance(node.left, ATOMS) and isinstance(node.comparators[0], ATOMS):
                    left_start = self.source.span(node.left)[0]
                    self.add("swap_operands", node, left_start, right_end,
                             self.source.text(right_start, right_end) + between + self.source.text(left_start, left_end))
        self.generic_visit(node)

    def visit_BoolOp(self, node):
        first_end = self.source.span(node.values[0])[1]
        second_start = self.source.span(node.values[1])[0]
        between = self.source.text(first_end, second_start)
        word, other = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
        if between.split() == [word]:
            self.add("flip_boolean", node, first_end, second_start, between.replace(word, other))
        self.generic_visit(node)

    def visit_UnaryOp(self, node):
        if isinstance(node.op, ast.Not):
            start, _ = self.source.span(node)
            operand_start, _ = self.source.span(node.operand)
            self.add("flip_boolean", node, start, operand_start, "")
        self.generic_visit(node)

    def visit_BinOp(self, node):
        op = SWAPPABLE_BINARY.get(type(node.op))
        if op and isinstance(node.left, ATOMS) and isinstance(node.right, ATOMS):
            left_start, left_end = self.source.span(node.left)
            right_start, right_end = self.source.span(node.right)
            between = self.source.text(left_end, right_start)
            if between.strip() == op:
                self.add("swap_operands", node, left_start, right_end,
                         self.source.text(right_start, right_end) + between + self.source.text(left_start, left_end))
        self.generic_visit(node)

    def visit_Call(self, node):
        if isinstance(node.func, ast.Name) and node.func.id == "range" and node.args and not node.keywords:
            bound = node.args[1] if len(node.args) >= 2 else node.args[0]
            start, end = self.source.span(bound)
            text = self.source.text(start, end)
            if isinstance(bound, ast.Constant) and type(bound.value) is int:
                self.default_nodes.add(id(bound))
                self.add("shift_range_bound", node, start, end, str(bound.value + 1))
                if bound.value > 0:
                    self.add("shift_range_bound", node, start, end, str(bound.value - 1))
            elif isinstance(bound, ATOMS):
                self.add("shift_range_bound", node, start, end, text + " + 1")
                self.add("shift_range_bound", node, start, end, text + " - 1")
        self.generic_visit(node)

    def visit_Constant(self, node):
        if type(node.value) is int and id(node) not in self.default_nodes and self.in_function():
            start, end = self.source.span(node)
            if self.source.text(start, end).isdigit():
                self.add("shift_constant", node, start, end, str(node.value + 1))
                if node.value > 0:
                    self.add("shift_constant", node, start, end, str(node.value - 1))

    # Statements

    def change_defaults(self, node):
        arguments = node.args
        for default in list(arguments.defaults) + [d for d in arguments.kw_defaults if d is not None]:
            if not isinstance(default, ast.Constant):
                continue
            self.default_nodes.add(id(default))
            start, end = self.source.span(default)
            value = default.value
            if type(value) is bool:
                replacement = "False" if value else "True"
            elif type(value) is int:
                replacement = str(value + 1)
            elif value is None:
                continue
            else:
                continue
            self.scope.append(node.name)
            self.add("change_default", default, start, end, replacement)
            self.scope.pop()

    def remove(self, kind, node, siblings):
        if not self.source.owns_lines(node):
            return
        start, end = self.source.line_span(node.lineno, node.end_lineno)
        replacement = "" if len(siblings) > 1 else self.source.indent(node) + "pass\n"
        self.add(kind, node, start, end, replacement)

    def statement_block(self, body):
        """Mutations of one block's statements; nested blocks are reached by generic_visit."""
        for index, statement in enumerate(body):
            if isinstance(statement, ast.If):
                self.if_statement(statement, body)
            elif isinstance(statement, (ast.For, ast.While)):
                self.remove("remove_loop", statement, body)
            elif isinstance(statement, REMOVABLE_ASSIGNMENTS):
                self.remove("remove_assignment", statement, body)
            elif isinstance(statement, ast.Return) and self.nested:
                self.remove("remove_early_return", statement, body)
            nested_blocks = [getattr(statement, field, None) for field in ("body", "orelse", "finalbody")]
            if not isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                for block in nested_blocks:
                    if block and isinstance(block, list) and isinstance(block[0], ast.stmt):
                        self.nested += 1
                        self.statement_block(block)
                        self.nested -= 1
                if isinstance(statement, ast.Try):
                    for handler in statement.handlers:
                        self.nested += 1
                        self.statement_block(handler.body)
                        self.nested -= 1
            if index + 1 < len(body):
                self.swap_statements(statement, body[index + 1])

    nested = 0

    def if_statement(self, node, siblings):
        if not node.orelse:
            self.remove("remove_branch", node, siblings)
            return
        body_first, body_last = node.body[0], node.body[-1]
        else_first, else_last = node.orelse[0], node.orelse[-1]
        # The else (or elif) branch goes: from the end of the body's last line to the end of the if.
        _, body_end = self.source.line_span(body_last.lineno, body_last.end_lineno)
        _, if_end = self.source.line_span(node.end_lineno, node.end_lineno)
        if self.source.owns_lines(node):
            self.add("remove_branch", node, body_end, if_end, "")
        else_line = self.source.data[self.source.line_starts[else_first.lineno - 1]:]
        is_elif = isinstance(else_first, ast.If) and else_line.lstrip().startswith(b"elif")
        if is_elif or not self.source.owns_lines(body_first) or not self.source.owns_lines(else_first):
            return
        if self.source.indent(body_first) != self.source.indent(else_first):
            return
        body_start, body_stop = self.source.line_span(body_first.lineno, body_last.end_lineno)
        else_start, else_stop = self.source.line_span(else_first.lineno, else_last.end_lineno)
        middle = self.source.text(body_stop, else_start)
        self.add("invert_if_else", node, body_start, else_stop,
                 self.source.text(else_start, else_stop) + middle + self.source.text(body_start, body_stop))

    def swap_statements(self, first, second):
        simple = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr)
        if not (isinstance(first, simple) and isinstance(second, simple)):
            return
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            return  # a docstring
        if not (self.source.owns_lines(first) and self.source.owns_lines(second)):
            return
        if second.lineno != first.end_lineno + 1:
            return
        start, middle = self.source.line_span(first.lineno, first.end_lineno)
        _, end = self.source.line_span(second.lineno, second.end_lineno)
        first_text = self.source.text(start, middle)
        second_text = self.source.text(middle, end)
        if not second_text.endswith("\n"):
            return
        self.add("swap_statements", first, start, end, second_text + first_text)


def mutations_of(path):
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        tree = ast.parse(data, filename=path)
    except (OSError, SyntaxError, ValueError) as error:
        print(f"warden_mutate: skipped {path}: {error}", file=sys.stderr)
        return []
    source = Source(data)
    visitor = Mutations(path, source)
    visitor.visit(tree)
    original = ast.dump(tree)
    kept = []
    seen = set()
    for mutation in visitor.found:
        key = (mutation["start"], mutation["end"], mutation["replacement"])
        if key in seen:
            continue
        seen.add(key)
        mutated = data[:mutation["start"]] + mutation["replacement"].encode("utf-8") + data[mutation["end"]:]
        try:
            if ast.dump(ast.parse(mutated)) == original:
                continue
        except (SyntaxError, ValueError):
            continue
        kept.append(mutation)
    return kept


def main():
    for path in sys.argv[1:]:
        for mutation in mutations_of(path):
            print(json.dumps(mutation, sort_keys=True))


if __name__ == "__main__":
    main()
