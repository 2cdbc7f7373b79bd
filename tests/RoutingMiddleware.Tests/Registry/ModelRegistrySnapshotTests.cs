using System.Globalization;
using ModelRouting.Registry;
using ModelRouting.Routing;
using ModelRouting.Tests.TestSupport;
using static ModelRouting.Tests.TestSupport.RegistryTestExtensions;

namespace ModelRouting.Tests.Registry;

/// <summary>
/// Seed weakness: the registry was mutated in place behind <c>registry_mut</c>, so a reader could see a
/// half-applied change. Registries are now immutable snapshots; every change returns a new one.
/// </summary>
public class ModelRegistrySnapshotTests
{
    private readonly ManualTimeProvider _time = new();
    private ModelRegistry _current = ModelRegistry.Empty;

    [Fact]
    public void Register_ReturnsNewRegistry_OldSnapshotUnchanged()
    {
        var before = RegistryOf(_time, Endpoint("a") with { IsDefault = true, Aliases = ["x"] });

        var after = before.MustRegister(Endpoint("b") with { IsDefault = true, Aliases = ["y"] });

        Assert.NotSame(before, after);
        AssertOnlyA(before);
        Assert.Equal(2, after.Count);
        Assert.Equal("b", after.DefaultId);
    }

    [Fact]
    public void Register_Replacement_OldSnapshotKeepsOldEndpoint()
    {
        var before = RegistryOf(_time, Endpoint("a") with { MaxContextLength = 4096 });

        var after = before.MustRegister(Endpoint("a") with { MaxContextLength = 65536 });

        Assert.Equal(4096, before.Resolve("a")!.MaxContextLength);
        Assert.Equal(65536, after.Resolve("a")!.MaxContextLength);
    }

    [Fact]
    public void Unregister_OldSnapshotStillHasEndpointDefaultAndAliases()
    {
        var before = RegistryOf(_time, Endpoint("a") with { IsDefault = true, Aliases = ["x"] }, Endpoint("b"));

        var (after, _) = before.Unregister("a");

        Assert.Equal(2, before.Count);
        Assert.Equal("a", before.DefaultEndpoint?.Id.Value);
        Assert.Equal("a", before.Resolve("x")?.Id.Value);
        Assert.Equal(1, after.Count);
        Assert.Null(after.DefaultEndpoint);
        Assert.Null(after.Resolve("x"));
    }

    [Fact]
    public void AliasChanges_OldSnapshotUnchanged()
    {
        var before = RegistryOf(_time, Endpoint("a") with { Aliases = ["x"] }, Endpoint("b"));

        var added = before.AddAlias("y", "a").Must();
        var moved = before.MoveAlias("x", "b").Must();
        var removed = before.RemoveAlias("x");

        Assert.Equal(["x"], before.Aliases.Keys);
        Assert.Equal("a", before.Resolve("x")?.Id.Value);
        Assert.Null(before.Resolve("y"));
        Assert.Equal("a", added.Resolve("y")?.Id.Value);
        Assert.Equal("b", moved.Resolve("x")?.Id.Value);
        Assert.Null(removed.Resolve("x"));
    }

    [Fact]
    public void SetDefault_OldSnapshotUnchanged()
    {
        var before = RegistryOf(_time, Endpoint("a") with { IsDefault = true }, Endpoint("b"));

        var after = before.SetDefault("b").Must();

        Assert.Equal("a", before.DefaultId);
        Assert.Equal("b", after.DefaultId);
    }

    [Fact]
    public void SetStatus_OldSnapshotUnchanged()
    {
        var before = RegistryOf(_time, Endpoint("a"), Endpoint("b"));

        var (after, _) = before.SetStatus("a", EndpointStatus.Loading);

        Assert.Equal(EndpointStatus.Ready, before.Resolve("a")!.Status);
        Assert.Equal(["a", "b"], before.AvailableEndpoints.Select(e => e.Id.Value));
        Assert.Equal(EndpointStatus.Loading, after.Resolve("a")!.Status);
        Assert.Equal(["b"], after.AvailableEndpoints.Select(e => e.Id.Value));
    }

    [Fact]
    public void RouterOverOldSnapshot_KeepsRoutingTheOldState()
    {
        var before = RegistryOf(_time, Endpoint("a") with { IsDefault = true, Aliases = ["x"] });
        var router = new ModelRouter(before);

        _ = before.Unregister("a").Registry.MustRegister(Endpoint("b") with { IsDefault = true, Aliases = ["z"] });
        _ = before.SetStatus("a", EndpointStatus.Disabled);

        Assert.Equal("a", router.Route(null).Endpoint?.Id.Value);
        Assert.Equal("a", router.Route("x").Endpoint?.Id.Value);
        Assert.Equal(RoutingErrorKind.ModelNotFound, router.Route("b").Error?.Kind);
    }

    /// <summary>
    /// One writer derives each generation from the published one and swaps it in; readers keep routing.
    /// Each generation g has every endpoint described "gen-g" with context 1000+g, the alias "latest" and
    /// the default on m(g mod N), and m(g+1 mod N) Loading. Any torn or in-place change shows up as a mix.
    /// </summary>
    [Fact]
    public async Task ConcurrentReaders_WhileSnapshotsAreSwapped_AlwaysSeeAConsistentSnapshot()
    {
        const int endpointCount = 8;
        const int generations = 1500;
        const int readerCount = 4;

        Volatile.Write(ref _current, Generation0(endpointCount));
        using var done = new CancellationTokenSource();

        var writer = Task.Run(() =>
        {
            try
            {
                for (var g = 1; g <= generations; g++)
                {
                    var next = NextGeneration(Volatile.Read(ref _current), g, endpointCount);
                    Interlocked.Exchange(ref _current, next);
                }
            }
            finally
            {
                done.Cancel();
            }
        });

        var readers = Enumerable.Range(0, readerCount).Select(_ => Task.Run(() =>
        {
            var checks = 0;
            var lastGeneration = -1;
            ModelRegistry? held = null;
            var heldGeneration = -1;
            while (!done.IsCancellationRequested || checks == 0)
            {
                var snapshot = Volatile.Read(ref _current);
                var generation = AssertConsistent(snapshot, endpointCount);
                Assert.True(generation >= lastGeneration, $"generation went back from {lastGeneration} to {generation}");
                lastGeneration = generation;

                // The snapshot read earlier must still hold exactly its own generation.
                if (held is not null)
                {
                    Assert.Equal(heldGeneration, AssertConsistent(held, endpointCount));
                }

                held = snapshot;
                heldGeneration = generation;
                checks++;
            }

            return checks;
        })).ToArray();

        await writer;
        var counts = await Task.WhenAll(readers);

        Assert.All(counts, c => Assert.True(c > 0));
        Assert.Equal(generations, AssertConsistent(Volatile.Read(ref _current), endpointCount));
    }

    private ModelRegistry Generation0(int endpointCount)
    {
        var registry = new ModelRegistry(_time);
        for (var i = 0; i < endpointCount; i++)
        {
            registry = registry.MustRegister(Endpoint($"m{i}") with
            {
                Description = "gen-0",
                MaxContextLength = 1000,
                IsDefault = i == 0,
                Aliases = i == 0 ? ["latest"] : [],
                Status = i == 1 % endpointCount ? EndpointStatus.Loading : EndpointStatus.Ready,
            });
        }

        return registry;
    }

    private static ModelRegistry NextGeneration(ModelRegistry published, int g, int endpointCount)
    {
        // Status, alias and default changes first, straight on the published snapshot, so that any
        // in-place change would be visible to the readers holding it.
        var target = $"m{g % endpointCount}";
        var registry = published.SetStatus(target, EndpointStatus.Ready).Registry;
        registry = registry.SetStatus($"m{(g + 1) % endpointCount}", EndpointStatus.Loading).Registry;
        registry = registry.MoveAlias("latest", target).Must();
        registry = registry.SetDefault(target).Must();
        for (var i = 0; i < endpointCount; i++)
        {
            var old = registry.Resolve($"m{i}")!;
            registry = registry.MustRegister(old with
            {
                Description = $"gen-{g}",
                MaxContextLength = 1000 + g,
                IsDefault = false,
                Aliases = [],
            });
        }

        return registry;
    }

    private static int AssertConsistent(ModelRegistry snapshot, int endpointCount)
    {
        var router = new ModelRouter(snapshot);
        var description = snapshot.Resolve("m0")!.Description;
        var g = int.Parse(description.AsSpan(4), CultureInfo.InvariantCulture);

        Assert.Equal(endpointCount, snapshot.Count);
        for (var i = 0; i < endpointCount; i++)
        {
            var endpoint = snapshot.Resolve($"m{i}")!;
            Assert.Same(endpoint, snapshot.AllEndpoints[i]);
            Assert.Equal(description, endpoint.Description);
            Assert.Equal(1000 + g, endpoint.MaxContextLength);
            var expected = i == (g + 1) % endpointCount ? EndpointStatus.Loading : EndpointStatus.Ready;
            Assert.Equal(expected, endpoint.Status);
        }

        var target = $"m{g % endpointCount}";
        Assert.Equal(target, router.Route("latest").Endpoint?.Id.Value);
        Assert.Equal(target, router.Route(null).Endpoint?.Id.Value);
        Assert.Equal(target, router.RouteForContext(null, 1000 + g).Endpoint?.Id.Value);
        Assert.Equal(RoutingErrorKind.ModelNotReady, router.Route($"m{(g + 1) % endpointCount}").Error?.Kind);
        var listed = Enumerable.Range(0, endpointCount).Where(i => i != (g + 1) % endpointCount).Select(i => $"m{i}");
        Assert.Equal(listed, router.ModelsList().Select(e => e.Id));
        Assert.Equal(listed, snapshot.AvailableEndpoints.Select(e => e.Id.Value));
        Assert.Single(snapshot.Aliases);
        return g;
    }

    private static void AssertOnlyA(ModelRegistry registry)
    {
        Assert.Equal(1, registry.Count);
        Assert.Equal("a", registry.DefaultId);
        Assert.Equal("a", registry.Resolve("x")?.Id.Value);
        Assert.Null(registry.Resolve("b"));
        Assert.Null(registry.Resolve("y"));
        Assert.Equal(["a"], registry.AllEndpoints.Select(e => e.Id.Value));
    }
}
