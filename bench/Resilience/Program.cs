using System.Globalization;
using Resilience;

// The resilience benchmark (issue 10, SPEC §13), run by bench/resilience.sh:
//   Resilience GATEWAY_DLL BACKEND_DLL WORK_DIR REPORT_FILE
// Knobs (environment): SCENARIOS ("1 2 3 4 5 6 7"), SOAK_SECONDS (600), FUZZ_COUNT (100000), RELOAD_SECONDS (60),
// RELOAD_IN_PLACE (0: rewrite the config through a temporary file and a rename; 1: in place), WARMUP (10 s of load
// before scenarios 1 and 2 measure), BASE_PORT (19300; the scenarios use BASE_PORT..BASE_PORT+11).
if (args.Length != 4)
{
    Console.Error.WriteLine("usage: Resilience GATEWAY_DLL BACKEND_DLL WORK_DIR REPORT_FILE");
    return 2;
}

string Knob(string name, string fallback) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value : fallback;
var scenarios = Knob("SCENARIOS", "1 2 3 4 5 6 7").Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet();
var soak = int.Parse(Knob("SOAK_SECONDS", "600"), CultureInfo.InvariantCulture);
var fuzz = int.Parse(Knob("FUZZ_COUNT", "100000"), CultureInfo.InvariantCulture);
var reload = double.Parse(Knob("RELOAD_SECONDS", "60"), CultureInfo.InvariantCulture);
var warmup = double.Parse(Knob("WARMUP", "10"), CultureInfo.InvariantCulture);
var setup = new Setup(Path.GetFullPath(args[0]), Path.GetFullPath(args[1]), Path.GetFullPath(args[2]), int.Parse(Knob("BASE_PORT", "19300"), CultureInfo.InvariantCulture));
Children.PidFile = Path.Combine(setup.Work, "children.pids");

// Whatever ends this program (an exception, Ctrl-C, SIGTERM from the script), no backend or gateway outlives it.
AppDomain.CurrentDomain.ProcessExit += (_, _) => Children.KillAll();
Console.CancelKeyPress += (_, _) => Children.KillAll();
ThreadPool.SetMinThreads(64, 64);

var report = new Report();
var started = DateTime.UtcNow;
(string Id, Func<Task> Run)[] all =
[
    ("1", () => Failover.OneOfTwoAsync(setup, report, warmup)),
    ("2", () => Failover.FallbackAsync(setup, report, warmup)),
    ("3", () => Failover.AllDeadAsync(setup, report)),
    ("4", () => Failover.MidStreamAsync(setup, report)),
    ("5", () => Fuzz.RunAsync(setup, report, fuzz)),
    ("6", () => Operations.ReloadAsync(setup, report, reload, Knob("RELOAD_IN_PLACE", "0") == "1")),
    ("7", () => Operations.SoakAsync(setup, report, soak)),
];
var exit = 0;
try
{
    foreach (var (id, run) in all.Where(s => scenarios.Contains(s.Id)))
    {
        Console.WriteLine($"--- scenario {id} ({DateTime.UtcNow:HH:mm:ss} UTC)");
        try
        {
            await run();
        }
        catch (Exception e)
        {
            // A scenario that could not be measured is reported as such, never as a figure.
            exit = 1;
            report.Row($"{id}. (not measured)", $"the scenario failed to run: {e.GetType().Name}: {e.Message.Split('\n')[0]}", "-", null);
        }
    }
}
finally
{
    Children.KillAll();
}

var cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':')[1].Trim() ?? "unknown CPU";
var header = $"Resilience benchmark, {started:yyyy-MM-dd HH:mm} to {DateTime.UtcNow:HH:mm} UTC, {Environment.ProcessorCount} cores ({cpu}), .NET {Environment.Version}, "
    + $"gateway published in Release; gateway, backends and load generator share the cores (other builds ran on this machine meanwhile).";
var markdown = report.Markdown(header);
await File.WriteAllTextAsync(args[3], markdown);
Console.WriteLine();
Console.WriteLine(markdown);
return exit;
