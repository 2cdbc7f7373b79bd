using ModelRouting.Registry;

namespace ModelRouting.Tests.Registry;

public class AdapterStackTests
{
    private const double Tolerance = 1e-12;

    [Fact]
    public void Empty_HasNoAdapters()
    {
        Assert.True(AdapterStack.Empty.IsEmpty);
        Assert.Equal(0, AdapterStack.Empty.Count);
        Assert.Equal(0, AdapterStack.Empty.TotalWeight);
    }

    [Fact]
    public void Add_AppendsInOrder()
    {
        var stack = AdapterStack.Empty.Add("sql", 0.7).Add("chat", 0.3);

        Assert.Equal(2, stack.Count);
        Assert.False(stack.IsEmpty);
        Assert.Equal([new AdapterRef("sql", 0.7), new AdapterRef("chat", 0.3)], stack.Adapters);
    }

    [Fact]
    public void Add_ReturnsNewStack_LeavingOriginalUnchanged()
    {
        var one = AdapterStack.Empty.Add("sql", 1);

        var two = one.Add("chat", 1);

        Assert.Equal(1, one.Count);
        Assert.Equal(2, two.Count);
        Assert.True(AdapterStack.Empty.IsEmpty);
    }

    [Fact]
    public void Constructor_CopiesTheAdapters()
    {
        var source = new List<AdapterRef> { new("sql", 1) };

        var stack = new AdapterStack(source);
        source.Add(new AdapterRef("chat", 1));

        Assert.Equal(1, stack.Count);
    }

    [Theory]
    [InlineData(new[] { 0.7, 0.3 }, 1.0)]
    [InlineData(new[] { 2.0, 6.0 }, 8.0)]
    [InlineData(new[] { 0.5 }, 0.5)]
    [InlineData(new[] { 0.0, 0.0 }, 0.0)]
    public void TotalWeight_IsTheSumOfWeights(double[] weights, double expected) =>
        Assert.Equal(expected, Stack(weights).TotalWeight, Tolerance);

    [Theory]
    [InlineData(new[] { 0.7, 0.3 }, new[] { 0.7, 0.3 })]
    [InlineData(new[] { 2.0, 6.0 }, new[] { 0.25, 0.75 })]
    [InlineData(new[] { 1.0, 1.0, 1.0, 1.0 }, new[] { 0.25, 0.25, 0.25, 0.25 })]
    [InlineData(new[] { 0.2 }, new[] { 1.0 })]
    [InlineData(new[] { 0.0, 3.0 }, new[] { 0.0, 1.0 })]
    public void Normalize_ScalesWeightsToSumToOne(double[] weights, double[] expected)
    {
        var normalized = Stack(weights).Normalize();

        Assert.Equal(1.0, normalized.TotalWeight, Tolerance);
        Assert.Equal(expected.Length, normalized.Count);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i], normalized.Adapters[i].Weight, Tolerance);
            Assert.Equal($"a{i}", normalized.Adapters[i].Name);
        }
    }

    [Fact]
    public void Normalize_LeavesOriginalUnchanged()
    {
        var stack = Stack([2.0, 6.0]);

        _ = stack.Normalize();

        Assert.Equal(2.0, stack.Adapters[0].Weight);
        Assert.Equal(6.0, stack.Adapters[1].Weight);
    }

    [Theory]
    [InlineData(new[] { 0.0 })]
    [InlineData(new[] { 0.0, 0.0 })]
    [InlineData(new[] { 1e-12, 0.0 })]
    public void Normalize_ZeroTotal_LeavesWeightsUnchanged(double[] weights)
    {
        var stack = Stack(weights);

        var normalized = stack.Normalize();

        Assert.Equal(weights, normalized.Adapters.Select(a => a.Weight));
    }

    [Fact]
    public void Normalize_Empty_StaysEmpty() => Assert.True(AdapterStack.Empty.Normalize().IsEmpty);

    [Theory]
    [InlineData(new[] { 0.7, 0.3 })]
    [InlineData(new[] { 1.0 })]
    [InlineData(new[] { 0.0, 2.0 })]
    [InlineData(new[] { 5.0, 10.0, 0.5 })]
    public void Validate_ValidStack_ReturnsNull(double[] weights) => Assert.Null(Stack(weights).Validate());

    [Fact]
    public void Validate_EmptyStack_IsRefused() =>
        Assert.Contains("at least one adapter", AdapterStack.Empty.Validate(), StringComparison.Ordinal);

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    public void Validate_EmptyName_IsRefusedNamingTheAdapter(string name)
    {
        var error = AdapterStack.Empty.Add("sql", 1).Add(name, 1).Validate();

        Assert.NotNull(error);
        Assert.Contains("[1]", error, StringComparison.Ordinal);
        Assert.Contains("Name", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(-0.1)]
    [InlineData(-5.0)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    [InlineData(double.NegativeInfinity)]
    public void Validate_NegativeOrNonFiniteWeight_IsRefusedNamingTheAdapter(double weight)
    {
        var error = AdapterStack.Empty.Add("sql", 1).Add("chat", weight).Validate();

        Assert.NotNull(error);
        Assert.Contains("[1] 'chat'", error, StringComparison.Ordinal);
        Assert.Contains("Weight", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_NegativeWeight_IsRefusedEvenWhenTotalIsPositive() =>
        Assert.NotNull(AdapterStack.Empty.Add("sql", -1).Add("chat", 3).Validate());

    [Theory]
    [InlineData(new[] { 0.0 })]
    [InlineData(new[] { 0.0, 0.0, 0.0 })]
    public void Validate_ZeroTotal_IsRefused(double[] weights) =>
        Assert.Contains("positive total", Stack(weights).Validate(), StringComparison.Ordinal);

    private static AdapterStack Stack(double[] weights) =>
        new(weights.Select((w, i) => new AdapterRef($"a{i}", w)));
}
