using ModelRouting.Configuration;
using ModelRouting.Tests.TestSupport;
using static ModelRouting.Tests.Configuration.ConfigTestData;

namespace ModelRouting.Tests.Configuration;

/// <summary>
/// Invalid configuration is refused with messages that name the entry and the field (SPEC §3), and every
/// error is reported, not just the first.
/// </summary>
public class ModelRegistryFactoryErrorTests
{
    private const string X = "ModelRouting:Endpoints[1] ('x')";

    /// <summary>Builds [0] a valid 'base' entry (alias "gpt") and [1] entry 'x' changed by <paramref name="spoil"/>; expects exactly one error.</summary>
    private static string SingleErrorForX(Action<ModelEndpointOptions> spoil)
    {
        var x = Entry("x");
        spoil(x);
        var (registry, errors) = Build(Entry("base", "gpt"), x);

        Assert.Null(registry);
        return Assert.Single(errors);
    }

    private static void AssertNames(string error, params string[] fragments)
    {
        foreach (var fragment in fragments)
        {
            Assert.Contains(fragment, error, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Build_UnknownCluster_NamesEntryFieldAndKnownClusters()
    {
        var error = SingleErrorForX(x => x.Cluster = "nope");

        AssertNames(error, $"{X}: Cluster", "'nope'", "llama-pool, qwen-pool");
    }

    [Theory]
    [InlineData("nope", "Fallbacks: 'nope' is not an endpoint id")]
    [InlineData("gpt", "Fallbacks: 'gpt' is an alias; name the endpoint id 'base'")]
    [InlineData("x", "Fallbacks: 'x' is the endpoint itself")]
    [InlineData(" ", "Fallbacks: a fallback must be a non-empty endpoint id")]
    public void Build_BadFallback_NamesEntryAndField(string fallback, string expected)
    {
        var error = SingleErrorForX(x => x.Fallbacks = [fallback]);

        Assert.Equal($"{X}: {expected}", error);
    }

    [Fact]
    public void Build_Fallbacks_AreKeptInOrder()
    {
        var x = Entry("x");
        x.Fallbacks = ["base", "y", "base"];
        var (registry, errors) = Build(Entry("base", "gpt"), x, Entry("y"));

        Assert.Empty(errors);
        Assert.True(registry!.TryGet("x", out var endpoint));
        Assert.Equal(["base", "y"], endpoint.Fallbacks);
    }

    [Fact]
    public void Build_ClusterDiffersInCase_IsUnknown()
    {
        var error = SingleErrorForX(x => x.Cluster = "Qwen-Pool");

        AssertNames(error, $"{X}: Cluster 'Qwen-Pool'");
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("  ")]
    public void Build_MissingCluster_NamesEntryAndField(string? cluster)
    {
        var error = SingleErrorForX(x => x.Cluster = cluster);

        Assert.Equal($"{X}: Cluster is required", error);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("   ")]
    public void Build_MissingId_NamesTheEntryByIndex(string? id)
    {
        var error = SingleErrorForX(x => x.Id = id);

        Assert.Equal("ModelRouting:Endpoints[1]: Id is required", error);
    }

    [Fact]
    public void Build_DuplicateId_NamesBothEntries()
    {
        var (registry, errors) = Build(Entry("base"), Entry("x"), Entry("x"));

        Assert.Null(registry);
        var error = Assert.Single(errors);
        AssertNames(error, "ModelRouting:Endpoints[2] ('x'): Id", "duplicate", "ModelRouting:Endpoints[1]");
    }

    [Fact]
    public void Build_DuplicateIdDifferingInCase_IsAccepted()
    {
        var (registry, errors) = Build(Entry("x"), Entry("X"));

        Assert.Empty(errors);
        Assert.Equal(2, registry?.Count);
    }

    [Fact]
    public void Build_AliasEqualToAnEarlierId_IsRefused()
    {
        var error = SingleErrorForX(x => x.Aliases = ["base"]);

        AssertNames(error, $"{X}: Aliases", "'base'", "collides with the id of ModelRouting:Endpoints[0]");
    }

    [Fact]
    public void Build_AliasEqualToALaterId_IsRefused()
    {
        var (registry, errors) = Build(Entry("base", "x"), Entry("x"));

        Assert.Null(registry);
        AssertNames(Assert.Single(errors), "ModelRouting:Endpoints[0] ('base'): Aliases", "'x'", "collides with the id of ModelRouting:Endpoints[1]");
    }

    [Fact]
    public void Build_AliasEqualToItsOwnId_IsRefused()
    {
        var error = SingleErrorForX(x => x.Aliases = ["x"]);

        AssertNames(error, $"{X}: Aliases", "'x'", "collides with the id of ModelRouting:Endpoints[1]");
    }

    [Fact]
    public void Build_AliasOfAnotherEntry_IsRefused()
    {
        var error = SingleErrorForX(x => x.Aliases = ["gpt"]);

        AssertNames(error, $"{X}: Aliases", "'gpt' collides with an alias of endpoint 'base'");
    }

    [Theory]
    [InlineData("")]
    [InlineData("  ")]
    public void Build_EmptyAlias_IsRefused(string alias)
    {
        var error = SingleErrorForX(x => x.Aliases = [alias]);

        AssertNames(error, $"{X}: Aliases", "non-empty");
    }

    [Fact]
    public void Build_TwoDefaults_NamesTheSecondAndTheFirst()
    {
        var first = Entry("base");
        first.IsDefault = true;
        var x = Entry("x");
        x.IsDefault = true;

        var (registry, errors) = Build(first, x);

        Assert.Null(registry);
        AssertNames(Assert.Single(errors), $"{X}: IsDefault", "'base' is already the default");
    }

    [Theory]
    [InlineData("sleeping")]
    [InlineData("1")]
    [InlineData("-1")]
    [InlineData("Loading, Error")]
    [InlineData("")]
    public void Build_BadStatus_NamesEntryFieldAndValue(string status)
    {
        var error = SingleErrorForX(x => x.Status = status);

        AssertNames(error, $"{X}: Status '{status}'", "Ready, Loading, Error, Disabled");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    [InlineData(int.MinValue)]
    public void Build_NonPositiveMaxContextLength_NamesEntryFieldAndValue(int length)
    {
        var error = SingleErrorForX(x => x.MaxContextLength = length);

        Assert.Equal($"{X}: MaxContextLength must be positive, got {length}", error);
    }

    [Fact]
    public void Build_AdapterAndAdaptersBothSet_IsRefused()
    {
        var error = SingleErrorForX(x =>
        {
            x.Adapter = "sql";
            x.Adapters = [new() { Name = "chat", Weight = 1 }];
        });

        AssertNames(error, $"{X}: Adapter and Adapters are both set");
    }

    [Theory]
    [InlineData("")]
    [InlineData("  ")]
    public void Build_EmptyAdapter_IsRefused(string adapter)
    {
        var error = SingleErrorForX(x => x.Adapter = adapter);

        AssertNames(error, $"{X}: Adapter must not be empty");
    }

    public static TheoryData<string, double, string, double, string> InvalidStacks => new()
    {
        { "sql", 1, "", 1, "[1] has an empty Name" },
        { "sql", 1, "  ", 1, "[1] has an empty Name" },
        { "sql", 1, "chat", -0.5, "[1] 'chat' has Weight" },
        { "sql", double.NaN, "chat", 1, "[0] 'sql' has Weight" },
        { "sql", double.PositiveInfinity, "chat", 1, "[0] 'sql' has Weight" },
        { "sql", 0, "chat", 0, "positive total" },
    };

    [Theory]
    [MemberData(nameof(InvalidStacks))]
    public void Build_InvalidAdapterStack_NamesEntryAndAdapters(string name0, double weight0, string name1, double weight1, string expected)
    {
        var error = SingleErrorForX(x => x.Adapters = [new() { Name = name0, Weight = weight0 }, new() { Name = name1, Weight = weight1 }]);

        AssertNames(error, $"{X}: Adapters:", expected);
    }

    [Fact]
    public void Build_EmptyAdapterStack_IsRefused()
    {
        var error = SingleErrorForX(x => x.Adapters = []);

        AssertNames(error, $"{X}: Adapters:", "at least one adapter");
    }

    [Fact]
    public void Build_AdapterWithNullName_IsRefused()
    {
        var error = SingleErrorForX(x => x.Adapters = [new() { Name = null, Weight = 1 }]);

        AssertNames(error, $"{X}: Adapters:", "[0] has an empty Name");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public void Build_NonPositiveMaxRequestBodyBytes_IsRefused(long bytes)
    {
        var options = Options(Entry("a"));
        options.MaxRequestBodyBytes = bytes;

        var (registry, errors) = ModelRegistryFactory.Build(options, Clusters, null, new ManualTimeProvider());

        Assert.Null(registry);
        AssertNames(Assert.Single(errors), "ModelRouting:MaxRequestBodyBytes", bytes.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void Build_NegativeRetryAfterSeconds_IsRefused()
    {
        var options = Options(Entry("a"));
        options.RetryAfterSeconds = -1;

        var (registry, errors) = ModelRegistryFactory.Build(options, Clusters, null, new ManualTimeProvider());

        Assert.Null(registry);
        AssertNames(Assert.Single(errors), "ModelRouting:RetryAfterSeconds");
    }

    [Fact]
    public void Build_ErrorsInSeveralEntries_AreAllReported()
    {
        var unknownCluster = Entry("a");
        unknownCluster.Cluster = "nope";
        var badStatus = Entry("b");
        badStatus.Status = "sleeping";
        var zeroContext = Entry("c");
        zeroContext.MaxContextLength = 0;
        var stealsAlias = Entry("d", "gpt");

        var (registry, errors) = Build(Entry("base", "gpt"), unknownCluster, badStatus, zeroContext, stealsAlias);

        Assert.Null(registry);
        Assert.True(errors.Count >= 4, string.Join(Environment.NewLine, errors));
        Assert.Contains(errors, e => e.StartsWith("ModelRouting:Endpoints[1] ('a'): Cluster", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("ModelRouting:Endpoints[2] ('b'): Status", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("ModelRouting:Endpoints[3] ('c'): MaxContextLength", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("ModelRouting:Endpoints[4] ('d'): Aliases", StringComparison.Ordinal));
    }

    [Fact]
    public void Build_SeveralErrorsInOneEntry_AreAllReported()
    {
        var (registry, errors) = Build(new ModelEndpointOptions
        {
            Id = "x",
            Cluster = "nope",
            Status = "sleeping",
            MaxContextLength = -5,
        });

        Assert.Null(registry);
        Assert.Equal(3, errors.Count);
        Assert.All(errors, e => Assert.StartsWith("ModelRouting:Endpoints[0] ('x'): ", e, StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("Cluster", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("Status", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("MaxContextLength", StringComparison.Ordinal));
    }

    [Fact]
    public void Build_WithErrorsAndPrevious_ReturnsNoRegistryAndLeavesPreviousInForce()
    {
        var time = new ManualTimeProvider();
        var previous = MustBuild(Options(Entry("a")), time);
        var bad = Entry("a");
        bad.Cluster = "gone";

        var (registry, errors) = ModelRegistryFactory.Build(Options(bad), Clusters, previous, time);

        Assert.Null(registry);
        Assert.NotEmpty(errors);
        Assert.Equal("qwen-pool", previous.Resolve("a")?.Cluster);
    }
}
