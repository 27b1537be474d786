import Foundation
import Runs

/// The report's first page: a card per run, the tasks that flipped between runs, and one
/// sortable, filterable row per task with links to each attempt's viewer page. Past
/// `tasksPerPage` tasks the table goes on in further pages, so the first load stays small.
struct SummaryPage {
    var runs: [ReportRun]
    /// The viewer page of an attempt, relative to this page; nil when it has none.
    var attemptLink: (_ run: Int, _ row: AttemptResult) -> String?
    /// The file name of table page `n` (1 is the first page), relative to the others.
    var pageName: (_ page: Int) -> String
    var tasksPerPage = 1000

    /// Every page: the first with the summary, then the rest of the task table.
    func render() -> [String] {
        let ids = Set(runs.flatMap { $0.report.perTask.map(\.instanceID) }).sorted()
        let chunks = stride(from: 0, to: max(1, ids.count), by: tasksPerPage).map { ids[$0..<min(ids.count, $0 + tasksPerPage)] }
        let title = "Warden report: " + runs.map(\.name).joined(separator: ", ")
        return chunks.enumerated().map { index, chunk in
            var body = "<h1>\(HTML.text(title))</h1>\n"
            if index == 0 {
                body += "<div class=\"runs\">" + runs.indices.map(card).joined() + "</div>\n"
                if runs.count > 1 { body += comparison() }
            }
            body += pager(current: index + 1, of: chunks.count, taskCount: ids.count) + taskTable(chunk)
            return HTML.page(title: title + (index == 0 ? "" : " (tasks page \(index + 1))"), body: body, script: Self.tableScript)
        }
    }

    /// Links to the table's pages, when it has more than one.
    func pager(current: Int, of count: Int, taskCount: Int) -> String {
        guard count > 1 else { return "" }
        var html = "<nav class=\"pager\">\(taskCount) tasks in pages of \(tasksPerPage):"
        for page in 1...count {
            let range = "\((page - 1) * tasksPerPage + 1)–\(min(taskCount, page * tasksPerPage))"
            html += page == current ? " <b>\(range)</b>" : " <a href=\"\(HTML.attribute(pageName(page)))\">\(range)</a>"
        }
        return html + "</nav>"
    }

    /// A run's numbers, each tagged with `data-metric` so tests (and scripts) can read them.
    func card(_ index: Int) -> String {
        let run = runs[index], report = run.report
        func metric(_ name: String, _ label: String, _ value: String) -> String {
            "<dt>\(HTML.text(label))</dt><dd data-run=\"\(index)\" data-metric=\"\(HTML.attribute(name))\">\(HTML.text(value))</dd>"
        }
        let resolvedTasks = report.perTask.filter(\.firstAttemptResolved).count
        var card = "<section class=\"card\"><h2>\(HTML.text(run.name))</h2><dl>"
        if let settings = run.settings {
            card += metric("model", "model", settings.model) + metric("suite", "suite", settings.suite)
        }
        card += metric("tasks", "tasks", "\(report.tasks)")
        card += metric("attempts_per_task", "attempts per task", "\(report.attemptsPerTask)")
        card += metric("finished_attempts", "finished attempts", "\(report.finishedAttempts)")
        if report.unfinishedAttempts > 0 {
            card += metric("unfinished_attempts", "harness failures", "\(report.unfinishedAttempts)")
        }
        card += metric("resolved_tasks", "resolved (first attempt)", "\(resolvedTasks)")
        card += metric("resolved_rate", "resolved rate", percent(report.resolvedRate))
        card += metric("pass@1", "pass@1", percent(report.passAt1))
        if report.attemptsPerTask > 1 {
            card += metric("pass@k", "pass@\(report.attemptsPerTask)", report.passAtK.map(percent) ?? "n/a")
        }
        card += metric("tokens", "tokens", "\(report.promptTokens) prompt + \(report.completionTokens) completion")
        card += metric("time", "time", String(format: "%.0f s episodes, %.0f s scoring", report.episodeSeconds, report.scoreSeconds))
        card += "</dl><h4>exit statuses</h4>" + Charts.statusBar(report.exitStatuses) + "<dl>"
        for (status, count) in report.exitStatuses.sorted(by: { $0.key < $1.key }) {
            card += metric("status:" + status, status, "\(count)")
        }
        let finished = run.results.filter(\.isFinished)
        card += "</dl>" + Charts.histogram("steps", values: finished.map { Double($0.steps) }, unit: "steps")
        card += Charts.histogram("tokens", values: finished.map { Double($0.promptTokens + $0.completionTokens) }, unit: "tokens")
        card += Charts.histogram("episode time", values: finished.map(\.episodeSeconds), unit: "s")
        return card + "</section>"
    }

    /// Tasks whose first attempt resolved in some runs and not in others.
    func comparison() -> String {
        let rows = runs.map { Dictionary(uniqueKeysWithValues: $0.report.perTask.map { ($0.instanceID, $0) }) }
        let ids = Set(runs.flatMap { $0.report.perTask.map(\.instanceID) }).sorted()
        let flipped = ids.filter { id in Set(rows.map { $0[id]?.firstAttemptResolved ?? false }).count > 1 }
        var html = "<h2>Flipped between runs <span class=\"muted\" data-metric=\"flipped\">\(flipped.count)</span></h2>"
        guard !flipped.isEmpty else { return html + "<p class=\"muted\">Every task has the same first-attempt outcome in every run.</p>" }
        html += "<table id=\"flipped\"><thead><tr><th>task</th>"
        html += runs.map { "<th>\(HTML.text($0.name))</th>" }.joined() + "</tr></thead><tbody>"
        for id in flipped {
            html += "<tr><td>\(HTML.text(id))</td>"
            for index in runs.indices {
                let row = rows[index][id]
                let resolved = row?.firstAttemptResolved ?? false
                html += "<td class=\"\(resolved ? "ok" : "bad")\">\(resolved ? "resolved" : "not resolved")"
                html += " <span class=\"muted\">\(row?.resolved ?? 0)/\(row?.attempts ?? 0)</span></td>"
            }
            html += "</tr>"
        }
        return html + "</tbody></table>"
    }

    func taskTable(_ ids: ArraySlice<String>) -> String {
        let byTask = runs.map(\.resultsByTask)
        let statuses = Set(runs.flatMap { $0.results.map(\.exitStatus.rawValue) }).sorted()
        var html = "<h2>Tasks</h2><div class=\"filters\"><input id=\"filter-text\" type=\"search\" placeholder=\"filter tasks\">"
        html += "<select id=\"filter-status\"><option value=\"\">any exit status</option>"
        html += statuses.map { "<option value=\"\(HTML.attribute($0))\">\(HTML.text($0))</option>" }.joined() + "</select>"
        html += "<select id=\"filter-resolved\"><option value=\"\">resolved or not</option><option value=\"yes\">resolved</option>"
        html += "<option value=\"no\">not resolved</option></select><span id=\"shown\" class=\"muted\"></span></div>"
        html += "<table id=\"tasks\"><thead><tr><th data-sort>task</th>"
        for run in runs {
            let suffix = runs.count > 1 ? " (\(HTML.text(run.name)))" : ""
            html += "<th data-sort>resolved\(suffix)</th><th data-sort>statuses</th><th data-sort>steps</th>"
            html += "<th data-sort>tokens</th><th data-sort>seconds</th><th>attempts</th>"
        }
        html += "</tr></thead><tbody>\n"
        for id in ids {
            let rowsPerRun = byTask.map { $0[id] ?? [] }
            let all = rowsPerRun.flatMap { $0 }
            let rowStatuses = Set(all.map(\.exitStatus.rawValue)).sorted().joined(separator: " ")
            let resolved = all.contains(where: \.resolved) ? "yes" : "no"
            html += "<tr data-search=\"\(HTML.attribute(id.lowercased()))\" data-statuses=\"\(HTML.attribute(rowStatuses))\" data-resolved=\"\(resolved)\">"
            html += "<td>\(HTML.text(id))</td>"
            for (index, rows) in rowsPerRun.enumerated() {
                html += cells(run: index, rows: rows)
            }
            html += "</tr>\n"
        }
        return html + "</tbody></table>"
    }

    /// One run's cells of a task row.
    func cells(run index: Int, rows: [AttemptResult]) -> String {
        let finished = rows.filter(\.isFinished)
        let resolved = finished.filter(\.resolved).count
        let share = finished.isEmpty ? 0 : Double(resolved) / Double(finished.count)
        let counts = Dictionary(grouping: finished, by: \.exitStatus.rawValue).mapValues(\.count)
        let statuses = counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        func mean(_ values: [Double]) -> Double { values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count) }
        let steps = mean(finished.map { Double($0.steps) })
        let tokens = mean(finished.map { Double($0.promptTokens + $0.completionTokens) })
        let seconds = mean(finished.map(\.episodeSeconds))
        var html = "<td class=\"num \(resolved > 0 ? "ok" : "bad")\" data-v=\"\(share)\">\(resolved)/\(finished.count)</td>"
        html += "<td>\(HTML.text(statuses))</td>"
        html += "<td class=\"num\" data-v=\"\(steps)\">\(String(format: "%.1f", steps))</td>"
        html += "<td class=\"num\" data-v=\"\(tokens)\">\(Int(tokens))</td>"
        html += "<td class=\"num\" data-v=\"\(seconds)\">\(String(format: "%.1f", seconds))</td><td>"
        for row in rows {
            let kind = !row.isFinished ? "err" : row.resolved ? "ok" : "bad"
            let label = "attempt \(row.attempt): \(row.exitStatus.rawValue)" + (row.resolution.map { ", \($0)" } ?? "")
                + (row.error.map { ", \($0)" } ?? "")
            if let link = attemptLink(index, row) {
                html += "<a class=\"att \(kind)\" href=\"\(HTML.attribute(link))\" title=\"\(HTML.attribute(label))\">\(row.attempt)</a>"
            } else {
                html += "<span class=\"att \(kind)\" title=\"\(HTML.attribute(label))\">\(row.attempt)</span>"
            }
        }
        return html + "</td>"
    }

    func percent(_ value: Double) -> String { String(format: "%.1f%%", value * 100) }

    /// Filtering and sorting of the task table; listeners are attached here, never inline.
    static let tableScript = """
        (function(){
        const table=document.getElementById('tasks');if(!table)return;
        const body=table.tBodies[0],rows=Array.from(body.rows);
        const text=document.getElementById('filter-text'),status=document.getElementById('filter-status'),
        resolved=document.getElementById('filter-resolved'),shown=document.getElementById('shown');
        function apply(){const q=text.value.toLowerCase(),s=status.value,r=resolved.value;let n=0;
        for(const row of rows){const ok=(!q||row.dataset.search.includes(q))&&(!s||row.dataset.statuses.split(' ').includes(s))
        &&(!r||row.dataset.resolved===r);row.hidden=!ok;if(ok)n++;}
        shown.textContent=n+' of '+rows.length+' tasks';}
        for(const e of [text,status,resolved])e.addEventListener('input',apply);
        for(const th of table.tHead.querySelectorAll('th[data-sort]')){th.addEventListener('click',function(){
        const dir=th.dataset.dir==='asc'?'desc':'asc',col=th.cellIndex;
        for(const other of table.tHead.querySelectorAll('th'))delete other.dataset.dir;th.dataset.dir=dir;
        const key=c=>c.dataset.v!==undefined?parseFloat(c.dataset.v):c.textContent;
        rows.sort(function(a,b){const x=key(a.cells[col]),y=key(b.cells[col]);
        const c=typeof x==='number'&&typeof y==='number'?x-y:String(x).localeCompare(String(y));return dir==='asc'?c:-c;});
        for(const row of rows)body.appendChild(row);});}
        apply();
        })();
        """
}
