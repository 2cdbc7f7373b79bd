using ModelRouting.Failover;
using ModelRouting.Tests.TestSupport;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Model;

namespace ModelRouting.Tests.Failover;

public sealed class DestinationCooldownsTests
{
    private static readonly DestinationState s_a = new("a", new DestinationModel(new DestinationConfig { Address = "http://127.0.0.1:1/" }));
    private static readonly DestinationState s_b = new("b", new DestinationModel(new DestinationConfig { Address = "http://127.0.0.1:2/" }));

    [Fact]
    public void CoolDown_SkipsTheDestinationForThePeriod_OnlyInItsCluster()
    {
        var time = new ManualTimeProvider();
        var cooldowns = new DestinationCooldowns(time);

        cooldowns.CoolDown("c", s_a, TimeSpan.FromSeconds(5));
        time.Advance(TimeSpan.FromSeconds(2));

        Assert.Equal(TimeSpan.FromSeconds(3), cooldowns.Remaining("c", s_a));
        Assert.Equal(TimeSpan.Zero, cooldowns.Remaining("c", s_b));
        Assert.Equal(TimeSpan.Zero, cooldowns.Remaining("other", s_a));
    }

    [Fact]
    public void CoolDown_ALongerPeriodWins_AShorterOneDoesNotShortenIt()
    {
        var time = new ManualTimeProvider();
        var cooldowns = new DestinationCooldowns(time);

        cooldowns.CoolDown("c", s_a, TimeSpan.FromSeconds(30));
        cooldowns.CoolDown("c", s_a, TimeSpan.FromSeconds(5));

        Assert.Equal(TimeSpan.FromSeconds(30), cooldowns.Remaining("c", s_a));
    }

    [Fact]
    public void CooldownOver_OneCallerProbes_TheOthersWaitForTheProbeWindow()
    {
        var time = new ManualTimeProvider();
        var cooldowns = new DestinationCooldowns(time);
        cooldowns.CoolDown("c", s_a, TimeSpan.FromSeconds(5));
        time.Advance(TimeSpan.FromSeconds(5));

        Assert.Equal(TimeSpan.Zero, cooldowns.Remaining("c", s_a));
        Assert.Equal(DestinationCooldowns.ProbeWindow, cooldowns.Remaining("c", s_a));
        Assert.Equal(DestinationCooldowns.ProbeWindow, cooldowns.Remaining("c", s_a));

        // No outcome within the window: the next caller probes.
        time.Advance(DestinationCooldowns.ProbeWindow);
        Assert.Equal(TimeSpan.Zero, cooldowns.Remaining("c", s_a));
    }

    [Fact]
    public void ProbeSucceeds_EndsTheCooldown_ProbeFails_StartsANewOne()
    {
        var time = new ManualTimeProvider();
        var cooldowns = new DestinationCooldowns(time);
        cooldowns.CoolDown("c", s_a, TimeSpan.FromSeconds(5));
        cooldowns.CoolDown("c", s_b, TimeSpan.FromSeconds(5));
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(TimeSpan.Zero, cooldowns.Remaining("c", s_a));
        Assert.Equal(TimeSpan.Zero, cooldowns.Remaining("c", s_b));

        cooldowns.Succeeded("c", s_a);
        cooldowns.CoolDown("c", s_b, TimeSpan.FromSeconds(5));

        Assert.Equal(TimeSpan.Zero, cooldowns.Remaining("c", s_a));
        Assert.Equal(TimeSpan.Zero, cooldowns.Remaining("c", s_a));
        Assert.Equal(TimeSpan.FromSeconds(5), cooldowns.Remaining("c", s_b));
    }
}
