"""Coarse, bilingual groups over the 1000 ImageNet classes.

ImageNet names are fine-grained ("tabby", "Egyptian cat", "moped"); people type "cat", "猫",
"motorcycle". Summing the probabilities of a group's classes gives a confident coarse tag even
when the model hesitates between siblings (three cat breeds at 0.3 each is a cat at 0.9), and
the Chinese names give Chinese queries a direct target on top of the multilingual embedding.

Hand-made from the class list (``data/imagenet_classes.json``, model output order); indices
are inclusive ranges or single classes. A class may belong to several groups. Very broad
groups ("animal", "vehicle") are left out on purpose: summed over hundreds of classes, the
small probabilities every image gets add up to a confident-looking tag on anything.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Group:
    """One coarse concept: English and Chinese names and the ImageNet classes it covers."""

    en: str
    zh: str
    classes: tuple[int, ...]

    @property
    def label(self) -> str:
        """The text embedded for matching: both languages, so either kind of query finds it."""
        return f"{self.en} {self.zh}"


def _expand(*spans: int | tuple[int, int]) -> tuple[int, ...]:
    out: list[int] = []
    for span in spans:
        if isinstance(span, tuple):
            out.extend(range(span[0], span[1] + 1))
        else:
            out.append(span)
    return tuple(sorted(set(out)))


GROUPS: tuple[Group, ...] = (
    Group("fish", "鱼", _expand((0, 6), (389, 397))),
    Group("bird", "鸟", _expand((7, 24), (80, 100), (127, 146))),
    Group("frog, salamander", "青蛙 蝾螈", _expand((25, 32))),
    Group("turtle", "乌龟", _expand((33, 37))),
    Group("lizard", "蜥蜴", _expand((38, 48))),
    Group("crocodile", "鳄鱼", _expand(49, 50)),
    Group("snake", "蛇", _expand((52, 68))),
    Group("spider", "蜘蛛", _expand((72, 77))),
    Group("insect", "昆虫", _expand((300, 326))),
    Group("butterfly", "蝴蝶", _expand((321, 326))),
    Group("sea creature", "海洋生物", _expand((107, 126), (327, 329))),
    Group("crab, lobster", "螃蟹 龙虾", _expand((118, 126))),
    Group("whale, seal", "鲸 海豹", _expand((147, 150))),
    Group("dog", "狗", _expand((151, 268))),
    Group("wolf, fox", "狼 狐狸", _expand((269, 280))),
    Group("cat", "猫", _expand((281, 285), 383)),
    Group("big cat, lion, tiger", "狮子 老虎 豹", _expand((286, 293))),
    Group("bear", "熊", _expand((294, 297))),
    Group("panda", "熊猫", _expand(387, 388)),
    Group("rabbit", "兔子", _expand((330, 332))),
    Group("rodent, squirrel, hamster", "松鼠 仓鼠", _expand((333, 338))),
    Group("horse", "马", _expand(339, 340, 603)),
    Group("cattle, pig, sheep", "牛 猪 羊", _expand((341, 343), (345, 350))),
    Group("deer, antelope", "鹿 羚羊", _expand((351, 353))),
    Group("camel", "骆驼", _expand(354, 355)),
    Group("monkey, ape", "猴子 猩猩", _expand((365, 384))),
    Group("elephant", "大象", _expand(101, 385, 386)),
    Group(
        "car",
        "汽车",
        _expand(407, 436, 468, 511, 609, 627, 656, 661, 717, 751, 817, 479, 475),
    ),
    Group(
        "truck, bus, van",
        "卡车 公交车",
        _expand(555, 569, 654, 675, 734, 757, 779, 864, 867, 874, 561),
    ),
    Group("train, railway", "火车", _expand(466, 547, 565, 705, 820, 829)),
    Group(
        "boat, ship",
        "船",
        _expand(403, 472, 484, 510, 554, 576, 625, 628, 724, 780, 814, 833, 871, 914, 694),
    ),
    Group("aircraft, airplane", "飞机", _expand(404, 405, 895, 908)),
    Group("rocket, spacecraft, launch", "火箭 航天 发射", _expand(657, 744, 812)),
    Group("bicycle", "自行车", _expand(444, 671, 870, 880)),
    Group("motorcycle, scooter", "摩托车", _expand(665, 670)),
    Group("coffee", "咖啡", _expand(967, 504, 505, 550)),
    Group("cup, mug", "杯子", _expand(968, 504, 441, 572)),
    Group("drink, beverage", "饮料", _expand(967, 969, 966, 440, 441, 737, 907, 898, 899, 901, 504, 968, 849)),
    Group("tea", "茶", _expand(849)),
    Group("fruit", "水果", _expand((948, 957))),
    Group("vegetable", "蔬菜", _expand((936, 947))),
    Group("dessert, ice cream", "甜点 冰淇淋", _expand(927, 928, 929, 960)),
    Group("bread", "面包", _expand(930, 931, 932, 415)),
    Group(
        "food, meal",
        "食物 美食",
        _expand((923, 935), (959, 965), 967, (936, 957)),
    ),
    Group("flower", "花", _expand(985, 986, 984)),
    Group("mushroom", "蘑菇", _expand(947, (991, 997))),
    Group("mountain", "山", _expand(970, 972, 979, 980)),
    Group("lake, sea, beach", "湖 海 海滩", _expand(973, 975, 976, 977, 978, 460)),
    Group("landscape, nature", "风景 自然", _expand((970, 980))),
    Group(
        "building",
        "建筑",
        _expand(425, 483, 497, 498, 538, 580, 663, 668, 698, 832, 858, 853, 873, 900, 682, 410, 449),
    ),
    Group("bridge", "桥", _expand(821, 839, 888)),
    Group(
        "computer, electronics",
        "电脑 电子产品",
        _expand(527, 590, 620, 664, 681, 508, 673, 782, 851, 662, 742, 713),
    ),
    Group("phone", "手机 电话", _expand(487, 528, 707)),
    Group("camera, photography", "相机 摄影", _expand(759, 732, 872, 622)),
    Group(
        "musical instrument",
        "乐器",
        _expand(
            401,
            402,
            420,
            432,
            486,
            494,
            513,
            541,
            546,
            558,
            566,
            577,
            579,
            593,
            594,
            641,
            642,
            683,
            684,
            687,
            699,
            776,
            822,
            875,
            881,
            889,
        ),
    ),
    Group("clock, watch", "钟表 时钟", _expand(409, 530, 531, 892, 826, 604)),
    Group(
        "document, text, paper",
        "文档 文字 纸",
        _expand(916, 917, 918, 921, 922, 549, 446, 681),
    ),
    Group("sign", "标志 指示牌", _expand(919, 920)),
    Group("menu", "菜单", _expand(922)),
    Group("ball, sports", "球 运动", _expand(429, 430, 522, 574, 722, 768, 805, 852, 890)),
    Group(
        "furniture",
        "家具",
        _expand(423, 453, 493, 495, 526, 532, 559, 564, 765, 831, 857, 894, 520, 516),
    ),
    Group(
        "kitchenware",
        "厨具",
        _expand(469, 499, 567, 618, 659, 813, 909, 910, 544, 521, 766, 651, 859, 891),
    ),
    Group(
        "clothing",
        "衣服",
        _expand(
            399, 400, 411, 474, 501, 568, 578, 608, 610, 614, 655, 689, 697, 735, 775, 834, 841, 842, 869, 445, 638, 639
        ),
    ),
    Group("hat, helmet", "帽子 头盔", _expand(452, 515, 808, 433, 793, 667, 518, 560)),
    Group("shoes", "鞋", _expand(502, 514, 630, 770, 774)),
    Group("glasses", "眼镜", _expand(836, 837)),
    Group("toy", "玩具", _expand(850, 611)),
)
