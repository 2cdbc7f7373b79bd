using System.Globalization;
using System.Text;

namespace Resilience;

/// <summary>The results table (one row per figure) and the details behind it.</summary>
internal sealed class Report
{
    private readonly List<(string Scenario, string Measured, string Target, bool? Met)> _rows = [];
    private readonly StringBuilder _details = new();

    public void Row(string scenario, string measured, string target, bool? met)
    {
        _rows.Add((scenario, measured, target, met));
        Console.WriteLine($"[{scenario}] {measured} | target: {target} | {(met is null ? "-" : met.Value ? "met" : "NOT MET")}");
    }

    public void Detail(string line)
    {
        _details.AppendLine(line);
        Console.WriteLine("  " + line);
    }

    public string Markdown(string header)
    {
        var text = new StringBuilder();
        text.AppendLine(header).AppendLine();
        text.AppendLine("| scenario | measured | target | met |");
        text.AppendLine("|---|---|---|---|");
        foreach (var (scenario, measured, target, met) in _rows)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"| {scenario} | {measured.Replace("|", "\\|", StringComparison.Ordinal)} | {target} | {(met is null ? "-" : met.Value ? "yes" : "**no**")} |");
        }

        text.AppendLine().AppendLine("Details:").AppendLine().AppendLine("```").Append(_details).AppendLine("```");
        return text.ToString();
    }
}
