using BenchmarkDotNet.Attributes;
using ModelRouting.Inspection;

namespace ModelRouting.Benchmarks;

/// <summary>
/// The heuristic alone, on each category of the token-count corpus (tests/RoutingMiddleware.Tests/Inspection/Corpus):
/// what the single pass pays per prompt string, without the JSON scan around it.
/// </summary>
[MemoryDiagnoser]
public class HeuristicBenchmarks
{
    private byte[][] _documents = [];

    [Params("english", "code", "json", "chat-markdown", "chinese", "japanese", "other-scripts", "adversarial")]
    public string Category { get; set; } = "english";

    [GlobalSetup]
    public void Setup()
    {
        var corpus = Locate();
        _documents = [.. Directory.GetFiles(Path.Combine(corpus, Category)).Order(StringComparer.Ordinal).Select(File.ReadAllBytes)];
    }

    [Benchmark(Description = "heuristic, whole category")]
    public long Count()
    {
        long total = 0;
        foreach (var document in _documents)
        {
            total += HeuristicTokenCounter.Instance.CountTokens(document);
        }

        return total;
    }

    private static string Locate()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Proxy.sln")))
            {
                return Path.Combine(dir.FullName, "tests", "RoutingMiddleware.Tests", "Inspection", "Corpus");
            }
        }

        throw new InvalidOperationException($"No Proxy.sln above {AppContext.BaseDirectory}.");
    }
}
