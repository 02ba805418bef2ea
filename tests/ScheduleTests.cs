using IlgpuVae.Model;
using IlgpuVae.Model.Data;

namespace IlgpuVae.Tests;

public sealed class ScheduleTests
{
    [Fact]
    public void IwaeScheduleHasThePapersStagesAndRates()
    {
        // 3^i epochs at 1e-3·10^(−i/7), i = 0..7: stage boundaries after epochs 1, 4, 13, 40, 121, 364, 1093, 3280.
        Assert.Equal(3280, LearningRateSchedule.Epochs(LearningRateScheduleKind.Iwae));
        var boundaries = new[] { 1, 4, 13, 40, 121, 364, 1093, 3280 };
        for (int stage = 0; stage < boundaries.Length; stage++)
        {
            double rate = 1e-3 * Math.Pow(10, -stage / 7.0);
            Assert.Equal(rate, LearningRateSchedule.Rate(LearningRateScheduleKind.Iwae, 1e-3, boundaries[stage]), 15);
            if (stage + 1 < boundaries.Length)
                Assert.NotEqual(rate, LearningRateSchedule.Rate(LearningRateScheduleKind.Iwae, 1e-3, boundaries[stage] + 1));
        }
        Assert.Equal(1e-4, LearningRateSchedule.Rate(LearningRateScheduleKind.Iwae, 1e-3, 5000), 15);
    }

    [Fact]
    public void ShortScheduleRunsTheSameRatesOneEpochEach()
    {
        Assert.Equal(8, LearningRateSchedule.Epochs(LearningRateScheduleKind.IwaeShort));
        for (int epoch = 1; epoch <= 8; epoch++)
            Assert.Equal(2e-3 * Math.Pow(10, -(epoch - 1) / 7.0), LearningRateSchedule.Rate(LearningRateScheduleKind.IwaeShort, 2e-3, epoch), 15);
        Assert.Equal(5e-4, LearningRateSchedule.Rate(LearningRateScheduleKind.Constant, 5e-4, 77));
    }

    [Fact]
    public void StaticBinarizationIsFixedBinaryAndFollowsTheGreyLevels()
    {
        var grey = Enumerable.Range(0, 20_000).Select(i => (byte)(i % 256)).ToArray();
        var data = new ImageDataset("t", grey, new byte[100], 100, 10, 20);
        var once = data.BinarizeOnce(seed: 3, part: 0);
        Assert.Equal(once.Images, data.BinarizeOnce(seed: 3, part: 0).Images);
        Assert.NotEqual(once.Images, data.BinarizeOnce(seed: 3, part: 1).Images);
        Assert.All(once.Images, value => Assert.True(value is 0 or 255));
        // Each pixel is 255 with probability grey/255: over 20 000 pixels of mean grey 127.5 the share of 255s
        // is 0.5 ± 0.0035 (one standard deviation); 0.02 is over five of them.
        double share = once.Images.Count(value => value == 255) / (double)once.Images.Length;
        Assert.InRange(share, 0.48, 0.52);
        Assert.All(once.Images.Where((_, i) => grey[i] == 0), value => Assert.Equal(0, value));
        Assert.All(once.Images.Where((_, i) => grey[i] == 255), value => Assert.Equal(255, value));
    }
}
