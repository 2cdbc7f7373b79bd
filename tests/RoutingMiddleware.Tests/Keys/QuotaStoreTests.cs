using ModelRouting.Quotas;
using ModelRouting.Tests.TestSupport;

namespace ModelRouting.Tests.Keys;

/// <summary>The in-process quota store (SPEC §14): sliding windows, all-or-nothing admission, corrected reservations.</summary>
public sealed class QuotaStoreTests
{
    private static QuotaScope Scope(string id, int? rpm = null, long? tpm = null, int? concurrent = null) => new(id, new RateLimits(rpm, tpm, concurrent));

    [Fact]
    public async Task SixtyPerMinute_AdmitsSixty_ThenOneMoreEachSecondAsTheWindowSlides_NeverMoreThanSixtyInAnySixtySeconds()
    {
        var time = new ManualTimeProvider();
        var store = new InProcessQuotaStore(time);
        var key = Scope("key:k", rpm: 60);
        var admittedAt = new List<TimeSpan>();
        var elapsed = TimeSpan.Zero;
        for (var tick = 0; tick < 2400; tick++) // 120 s in 50 ms steps, 4 attempts per step
        {
            for (var i = 0; i < 4; i++)
            {
                var decision = await store.AdmitAsync(new QuotaRequest(key, null, 0), default);
                if (decision.Admitted)
                {
                    admittedAt.Add(elapsed);
                    await store.CompleteAsync(decision.Lease!, 0);
                }
                else
                {
                    Assert.Equal("requests", decision.RefusedBy);
                    Assert.InRange(decision.RetryAfter, TimeSpan.FromMilliseconds(1), TimeSpan.FromSeconds(60.25));
                }
            }

            time.Advance(TimeSpan.FromMilliseconds(50));
            elapsed += TimeSpan.FromMilliseconds(50);
        }

        Assert.Equal(120, admittedAt.Count);
        for (var i = 60; i < admittedAt.Count; i++)
        {
            Assert.True(admittedAt[i] - admittedAt[i - 60] >= TimeSpan.FromSeconds(60), $"61 admissions within {admittedAt[i] - admittedAt[i - 60]}");
        }
    }

    [Fact]
    public async Task Tokens_ReservedThenCorrected_BothWays_InTheSlotTheyWereReservedIn()
    {
        var time = new ManualTimeProvider();
        var store = new InProcessQuotaStore(time);
        var key = Scope("key:k", tpm: 1000);

        var first = await store.AdmitAsync(new QuotaRequest(key, null, 600), default);
        Assert.True(first.Admitted);
        Assert.Equal(400, first.Snapshot.RemainingTokens);
        Assert.False((await store.AdmitAsync(new QuotaRequest(key, null, 600), default)).Admitted);

        await store.CompleteAsync(first.Lease!, 100); // used far less than reserved: 500 come back
        var second = await store.AdmitAsync(new QuotaRequest(key, null, 600), default);
        Assert.True(second.Admitted);
        Assert.Equal(300, second.Snapshot.RemainingTokens);

        await store.CompleteAsync(second.Lease!, 900); // used more: charged
        await store.CompleteAsync(second.Lease!, 0); // a second completion changes nothing
        var refused = await store.AdmitAsync(new QuotaRequest(key, null, 10), default);
        Assert.Equal("tokens", refused.RefusedBy);
        Assert.Equal(0, refused.Snapshot.RemainingTokens);

        time.Advance(TimeSpan.FromSeconds(59.9));
        Assert.False((await store.AdmitAsync(new QuotaRequest(key, null, 1000), default)).Admitted);
        time.Advance(TimeSpan.FromSeconds(0.4)); // everything leaves within 60.25 s of being added
        Assert.True((await store.AdmitAsync(new QuotaRequest(key, null, 1000), default)).Admitted);
    }

    [Fact]
    public async Task Admission_IsAllOrNothing_AcrossKeyAndEndpoint()
    {
        var store = new InProcessQuotaStore(new ManualTimeProvider());
        var key = Scope("key:k", rpm: 10);
        var endpoint = Scope("endpoint:e", rpm: 1);
        Assert.True((await store.AdmitAsync(new QuotaRequest(key, endpoint, 0), default)).Admitted);
        for (var i = 0; i < 5; i++)
        {
            var refused = await store.AdmitAsync(new QuotaRequest(key, endpoint, 0), default);
            Assert.Contains("endpoint:e", refused.Reason, StringComparison.Ordinal);
        }

        // The endpoint's refusals spent none of the key's requests: 9 remain for another endpoint.
        var other = await store.AdmitAsync(new QuotaRequest(key, Scope("endpoint:f", rpm: 100), 0), default);
        Assert.Equal(8, other.Snapshot.RemainingRequests);
    }

    [Fact]
    public async Task Concurrency_SlotsComeBackOnCompletion()
    {
        var store = new InProcessQuotaStore(new ManualTimeProvider());
        var key = Scope("key:k", concurrent: 2);
        var a = await store.AdmitAsync(new QuotaRequest(key, null, 0), default);
        var b = await store.AdmitAsync(new QuotaRequest(key, null, 0), default);
        Assert.False((await store.AdmitAsync(new QuotaRequest(key, null, 0), default)).Admitted);
        await store.CompleteAsync(a.Lease!, 0);
        Assert.True((await store.AdmitAsync(new QuotaRequest(key, null, 0), default)).Admitted);
        await store.CompleteAsync(b.Lease!, 0);
    }

    [Fact]
    public async Task ReleaseEndpoint_FreesTheEndpointsSlotAndTokens_AtOnce_TheKeyStaysHeldUntilCompletion()
    {
        var store = new InProcessQuotaStore(new ManualTimeProvider());
        var key = Scope("key:k", tpm: 1000, concurrent: 3);
        var endpoint = Scope("endpoint:dead", tpm: 500, concurrent: 1);

        var first = await store.AdmitAsync(new QuotaRequest(key, endpoint, 400), default);
        Assert.True(first.Admitted);
        await store.ReleaseEndpointAsync(first.Lease!); // failed over to another endpoint
        await store.ReleaseEndpointAsync(first.Lease!); // once only

        var second = await store.AdmitAsync(new QuotaRequest(key, endpoint, 500), default);
        Assert.True(second.Admitted, second.Reason);
        Assert.Equal(0, second.Snapshot.RemainingTokens); // the endpoint's 500 of 500, the tightest
        var over = await store.AdmitAsync(new QuotaRequest(key, null, 101), default);
        Assert.Equal("tokens", over.RefusedBy); // the key still holds the first request's 400: 400 + 500 + 101 > 1000

        await store.CompleteAsync(first.Lease!, 300); // corrects the key alone
        var third = await store.AdmitAsync(new QuotaRequest(null, endpoint, 0), default);
        Assert.False(third.Admitted); // the one slot is the second request's: not freed twice
        Assert.Equal(0, third.Snapshot.RemainingTokens); // 500 of 500: nothing of the first request counted there
        var fourth = await store.AdmitAsync(new QuotaRequest(key, null, 200), default);
        Assert.True(fourth.Admitted, fourth.Reason);
        Assert.Equal(0, fourth.Snapshot.RemainingTokens); // 300 + 500 + 200 of 1000
    }

    [Theory]
    [InlineData(20, "20ms")]
    [InlineData(1000, "1s")]
    [InlineData(1500, "1.5s")]
    [InlineData(60_000, "1m0s")]
    [InlineData(360_000, "6m0s")]
    public void Duration_IsWrittenAsOpenAIWritesIt(int milliseconds, string expected) =>
        Assert.Equal(expected, QuotaHeaders.Duration(TimeSpan.FromMilliseconds(milliseconds)));

    [Fact]
    public void Duration_OfWholeMilliseconds_IsWhatTheFloatingPointFormulaWrites()
    {
        // Whole milliseconds take an integer path; it must write exactly what the formula writes.
        static string Formula(TimeSpan duration)
        {
            var seconds = Math.Round(duration.TotalSeconds % 60, 3);
            var minutes = (int)(duration.TotalSeconds / 60);
            return minutes > 0
                ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{minutes}m{seconds}s")
                : string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{seconds}s");
        }

        var random = new Random(14);
        var samples = Enumerable.Range(1000, 420_000).Select(ms => (long)ms)
            .Concat(Enumerable.Range(0, 20_000).Select(_ => random.NextInt64(1000, (long)TimeSpan.FromDays(1).TotalMilliseconds)));
        foreach (var milliseconds in samples)
        {
            var duration = TimeSpan.FromMilliseconds(milliseconds);
            Assert.Equal(Formula(duration), QuotaHeaders.Duration(duration));
        }

        foreach (var ticks in new long[] { 10_005_000, 15_999_999, 599_999_999, 600_000_001 })
        {
            Assert.Equal(Formula(TimeSpan.FromTicks(ticks)), QuotaHeaders.Duration(TimeSpan.FromTicks(ticks))); // not whole milliseconds: the formula itself
        }
    }

    [Fact]
    public void Headers_OfScopesWithDifferentLimits_InTurn_EachSayTheirOwnLimitsAndResets()
    {
        // The header texts of limits and resets are reused while they repeat: alternating snapshots must not mix.
        var first = new RateLimitSnapshot(60, 59, TimeSpan.FromMilliseconds(60_000), 10_000, 9_700, TimeSpan.FromMilliseconds(1_500));
        var second = new RateLimitSnapshot(1_000, 998, TimeSpan.FromMilliseconds(250), 5_000, 4_000, TimeSpan.FromMilliseconds(59_999));
        for (var i = 0; i < 3; i++)
        {
            foreach (var (snapshot, expected) in new[]
            {
                (first, new[] { "60", "59", "1m0s", "10000", "9700", "1.5s" }),
                (second, new[] { "1000", "998", "250ms", "5000", "4000", "59.999s" }),
            })
            {
                var headers = new Microsoft.AspNetCore.Http.HeaderDictionary();
                QuotaHeaders.Write(headers, snapshot);
                Assert.Equal(expected, new[]
                {
                    headers[QuotaHeaders.LimitRequests].ToString(), headers[QuotaHeaders.RemainingRequests].ToString(), headers[QuotaHeaders.ResetRequests].ToString(),
                    headers[QuotaHeaders.LimitTokens].ToString(), headers[QuotaHeaders.RemainingTokens].ToString(), headers[QuotaHeaders.ResetTokens].ToString(),
                });
            }
        }

        var requestsOnly = new Microsoft.AspNetCore.Http.HeaderDictionary();
        QuotaHeaders.Write(requestsOnly, new RateLimitSnapshot(60, 0, TimeSpan.FromSeconds(1), null, 0, TimeSpan.Zero));
        Assert.Equal(3, requestsOnly.Count);
    }

    [Fact]
    public void Tightest_OfTwoSnapshots_TakesOfEachKindTheOneWithLessLeft()
    {
        var requestsOnly = new RateLimitSnapshot(60, 10, TimeSpan.FromSeconds(5), null, 0, TimeSpan.Zero);
        var both = new RateLimitSnapshot(100, 50, TimeSpan.FromSeconds(1), 1000, 400, TimeSpan.FromSeconds(2));
        var tighter = new RateLimitSnapshot(3, 1, TimeSpan.FromSeconds(9), 2000, 900, TimeSpan.FromSeconds(3));

        Assert.Equal(new RateLimitSnapshot(60, 10, TimeSpan.FromSeconds(5), 1000, 400, TimeSpan.FromSeconds(2)), RateLimitSnapshot.Tightest(requestsOnly, both));
        Assert.Equal(new RateLimitSnapshot(60, 10, TimeSpan.FromSeconds(5), 1000, 400, TimeSpan.FromSeconds(2)), RateLimitSnapshot.Tightest(both, requestsOnly));
        Assert.Equal(new RateLimitSnapshot(3, 1, TimeSpan.FromSeconds(9), 1000, 400, TimeSpan.FromSeconds(2)), RateLimitSnapshot.Tightest(both, tighter));
        Assert.Equal(requestsOnly, RateLimitSnapshot.Tightest(requestsOnly, default));
    }
}
