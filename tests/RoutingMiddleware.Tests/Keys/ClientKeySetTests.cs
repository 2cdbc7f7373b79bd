using Microsoft.AspNetCore.Http;
using ModelRouting.Configuration;
using ModelRouting.Keys;
using ModelRouting.Registry;
using ModelRouting.Tests.TestSupport;

namespace ModelRouting.Tests.Keys;

/// <summary>
/// Authentication against the key set (SPEC §14) when a secret is presented again: the set keeps the secrets that
/// matched, so a second request is not hashed again, and that must change no answer.
/// </summary>
public sealed class ClientKeySetTests
{
    private static readonly DateTimeOffset s_now = ManualTimeProvider.DefaultStart;

    private static ClientKeySet Keys(params ClientKeyOptions[] keys) => ClientKeySet.Build(keys, [], new ModelRegistry(TimeProvider.System));

    private static ClientKeyOptions Key(string id, string secret, bool enabled = true, DateTimeOffset? expiresAt = null) =>
        new() { Id = id, KeyHash = ClientKeyValidator.HashHex(secret), Models = ["*"], Enabled = enabled, ExpiresAt = expiresAt };

    private static ClientKey? Authenticate(ClientKeySet keys, string? authorization, out string? failure, TimeProvider? time = null, string? apiKey = null)
    {
        var context = new DefaultHttpContext();
        if (authorization is not null)
        {
            context.Request.Headers.Authorization = authorization;
        }

        if (apiKey is not null)
        {
            context.Request.Headers["api-key"] = apiKey;
        }

        return keys.Authenticate(context.Request, time ?? new ManualTimeProvider(), out failure);
    }

    [Fact]
    public void SameSecretAgain_IsTheSameKey_InBothHeaderForms()
    {
        var keys = Keys(Key("a", "sk-aaaa-1"), Key("b", "sk-bbbb-2"));
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("a", Authenticate(keys, "Bearer sk-aaaa-1", out _)?.Id);
            Assert.Equal("b", Authenticate(keys, null, out _, apiKey: "sk-bbbb-2")?.Id);
            Assert.Equal("a", Authenticate(keys, null, out _, apiKey: " sk-aaaa-1 ")?.Id);
        }
    }

    [Theory]
    [InlineData("sk-aaaa-2")] // same length, last character differs
    [InlineData("tk-aaaa-1")] // same length, first character differs
    [InlineData("sk-aaaa-1x")]
    [InlineData("sk-aaaa-")]
    [InlineData("SK-AAAA-1")]
    public void AfterAMatch_ANearbySecret_IsStillRefused(string other)
    {
        var keys = Keys(Key("a", "sk-aaaa-1"));
        Assert.NotNull(Authenticate(keys, "Bearer sk-aaaa-1", out _));
        Assert.Null(Authenticate(keys, "Bearer " + other, out var failure));
        Assert.Equal("Incorrect API key provided.", failure);
        Assert.Equal("a", Authenticate(keys, "Bearer sk-aaaa-1", out _)?.Id);
    }

    [Fact]
    public void ADisabledKey_IsRefusedEveryTime()
    {
        var keys = Keys(Key("a", "sk-aaaa-1", enabled: false));
        for (var i = 0; i < 2; i++)
        {
            Assert.Null(Authenticate(keys, "Bearer sk-aaaa-1", out var failure));
            Assert.Equal("The API key provided is disabled.", failure);
        }
    }

    [Fact]
    public void AKeyThatMatchedBefore_IsRefusedOnceItHasExpired()
    {
        var keys = Keys(Key("a", "sk-aaaa-1", expiresAt: s_now.AddMinutes(1)));
        var time = new ManualTimeProvider();
        Assert.Equal("a", Authenticate(keys, "Bearer sk-aaaa-1", out _, time)?.Id);
        time.Advance(TimeSpan.FromMinutes(2));
        Assert.Null(Authenticate(keys, "Bearer sk-aaaa-1", out var failure, time));
        Assert.Equal("The API key provided has expired.", failure);
    }

    [Fact]
    public void ManyKeysInUse_EachIsItsOwn()
    {
        var options = Enumerable.Range(0, 300).Select(i => Key("team-" + i, "sk-bench-" + i)).ToArray();
        var keys = Keys(options);
        for (var round = 0; round < 2; round++)
        {
            for (var i = 0; i < 300; i++)
            {
                Assert.Equal("team-" + i, Authenticate(keys, "Bearer sk-bench-" + i, out _)?.Id);
            }
        }

        Assert.Null(Authenticate(keys, "Bearer sk-bench-300", out _));
    }
}
