using ModelRouting.Inspection;

namespace ModelRouting.Tests.Inspection;

/// <summary>
/// HeuristicTokenCounter versus the committed o200k_base counts (reference-counts.tsv, checked against
/// TiktokenTokenCounter by TokenCounterTests): on realistic text the median absolute relative error of each category
/// is at most 3.5% and its worst document at most 20% (SPEC §18's accuracy target); on adversarial text the estimate is
/// never off by more than a factor of 2.
/// </summary>
public sealed class HeuristicAccuracyTests
{
    private const double MaxMedianError = 0.035;
    private const double MaxWorstError = 0.20;

    public static TheoryData<string> RealisticCategories =>
        new(TokenCorpus.Documents.Select(d => d.Category).Where(c => c != TokenCorpus.Adversarial).Distinct().Order(StringComparer.Ordinal));

    [Theory]
    [MemberData(nameof(RealisticCategories))]
    public void Realistic_MedianAndWorstErrorWithinTargets(string category)
    {
        var documents = TokenCorpus.Documents.Where(d => d.Category == category).ToList();
        Assert.InRange(documents.Count, 5, 10);

        var errors = documents.Select(d => (d.File, Error: RelativeError(d))).ToList();
        var median = Median(errors.Select(e => e.Error));
        var worst = errors.MaxBy(e => e.Error);

        Assert.True(median <= MaxMedianError, $"{category}: median error {median:P1} > {MaxMedianError:P1}");
        Assert.True(worst.Error <= MaxWorstError, $"{category}: {worst.File} off by {worst.Error:P1} > {MaxWorstError:P0}");
    }

    [Fact]
    public void Realistic_CategoriesArePresent()
    {
        var categories = TokenCorpus.Documents.Select(d => d.Category).ToHashSet();
        Assert.Superset(
            new HashSet<string>(["english", "code", "json", "japanese", "chinese", "chat-markdown", TokenCorpus.Adversarial]),
            categories);
    }

    [Fact]
    public void Adversarial_WithinFactorOfTwo()
    {
        var documents = TokenCorpus.Documents.Where(d => d.Category == TokenCorpus.Adversarial).ToList();
        Assert.InRange(documents.Count, 5, 10);
        Assert.All(documents, d =>
        {
            var ratio = (double)HeuristicTokenCounter.Instance.CountTokens(d.Utf8) / d.O200kBase;
            Assert.True(ratio is >= 0.5 and <= 2, $"{d.File}: estimate/actual = {ratio:F2}");
        });
    }

    private static double RelativeError(CorpusDocument document) =>
        Math.Abs(HeuristicTokenCounter.Instance.CountTokens(document.Utf8) - document.O200kBase) / (double)document.O200kBase;

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        var middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }
}
