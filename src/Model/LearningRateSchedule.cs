namespace IlgpuVae.Model;

public enum LearningRateScheduleKind
{
    /// <summary>--lr throughout.</summary>
    Constant,
    /// <summary>The IWAE paper's: 3^i epochs at lr·10^(−i/7) for i = 0..7, 3280 epochs in all.</summary>
    Iwae,
    /// <summary>The same eight learning rates, one epoch each (8 epochs): the paper's schedule in miniature,
    /// for runs that must finish in minutes.</summary>
    IwaeShort,
}

/// <summary>The learning rate of each epoch under a schedule; epochs past the schedule's end keep its last rate.</summary>
public static class LearningRateSchedule
{
    public const int IwaeStages = 8;

    /// <summary>Epochs in the schedule (0 for the constant one, which has no length of its own).</summary>
    public static int Epochs(LearningRateScheduleKind kind) => kind switch
    {
        LearningRateScheduleKind.Iwae => Enumerable.Range(0, IwaeStages).Sum(StageLength),
        LearningRateScheduleKind.IwaeShort => IwaeStages,
        _ => 0,
    };

    /// <summary>The learning rate for epoch <paramref name="epoch"/> (counted from 1).</summary>
    public static double Rate(LearningRateScheduleKind kind, double baseRate, int epoch)
    {
        if (epoch < 1)
            throw new ArgumentOutOfRangeException(nameof(epoch), "epochs count from 1");
        int stage = kind switch
        {
            LearningRateScheduleKind.Iwae => IwaeStage(epoch),
            LearningRateScheduleKind.IwaeShort => Math.Min(epoch - 1, IwaeStages - 1),
            _ => 0,
        };
        return baseRate * Math.Pow(10, -stage / 7.0);
    }

    private static int StageLength(int stage) => (int)Math.Pow(3, stage);

    /// <summary>Stage i covers epochs (Σ_{j&lt;i} 3^j, Σ_{j≤i} 3^j]; the last stage continues past the end.</summary>
    private static int IwaeStage(int epoch)
    {
        int end = 0;
        for (int stage = 0; stage < IwaeStages; stage++)
        {
            end += StageLength(stage);
            if (epoch <= end)
                return stage;
        }
        return IwaeStages - 1;
    }
}
