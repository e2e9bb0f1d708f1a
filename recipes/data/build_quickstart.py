#!/usr/bin/env python3
"""Deterministic generator for the quickstart sample datasets.

All text below is original, hand-written for this project. Rows are built
compositionally from small banks, then a fixed set of data-quality problems is
planted (duplicates, near-duplicates, empty and junk responses, messy
whitespace) so the quickstart recipe has something to clean.

Run:  python recipes/data/build_quickstart.py
Writes quickstart_general.jsonl (alpaca) and quickstart_domain.jsonl (sharegpt)
next to this file. Stdlib only; seeded with random.Random(0).
"""
import json
import os
import random
import re
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------------------
# General bank: (name, gist, [facts], [tips]). Tips start with a verb so they
# can be embedded after "readers ...".
# ---------------------------------------------------------------------------
TOPICS = [
    ("cooking pasta",
     "Pasta turns out best when it is cooked in plenty of well-salted water and tasted before draining.",
     ["Dried pasta is made from durum wheat semolina and water, which gives it a firm bite when cooked.",
      "A large pot of rapidly boiling water keeps the pieces moving so they do not clump together.",
      "Some of the starchy cooking water can be stirred into a sauce to help it cling to the noodles."],
     ["salt the water generously once it reaches a rolling boil",
      "taste a piece a minute or two before the time printed on the packet",
      "save a cup of cooking water before you drain the pot"]),
    ("baking bread at home",
     "Good homemade bread depends on patient rising, accurate measuring and a properly hot oven.",
     ["Yeast feeds on sugars in the flour and releases carbon dioxide, which makes the dough rise.",
      "Kneading develops gluten, a stretchy network of proteins that traps the gas bubbles.",
      "A loaf is usually done when it sounds hollow after a tap on the bottom."],
     ["weigh flour with a kitchen scale instead of using cups",
      "let the dough rise somewhere warm and free of drafts",
      "preheat the oven fully before the loaf goes in"]),
    ("kitchen knife safety",
     "Most kitchen cuts can be avoided with sharp blades, stable boards and careful hand positions.",
     ["A sharp knife is safer than a dull one because it needs less force and is less likely to slip.",
      "Curling the fingertips of the guiding hand keeps them away from the edge of the blade.",
      "A cutting board that slides around on the counter is a common cause of accidents."],
     ["place a damp cloth under the cutting board to stop it sliding",
      "hone the blade regularly and have it sharpened when it starts to drag",
      "wash knives separately rather than leaving them in a sink full of water"]),
    ("packing for a trip",
     "Efficient packing means bringing fewer, more versatile items and keeping essentials within reach.",
     ["Most airlines limit the size and weight of carry-on bags, and the limits differ between carriers.",
      "Clothes in a small set of matching colours can be combined into many different outfits.",
      "Travel documents and medicines are the hardest things to replace if a bag goes missing."],
     ["write a checklist a few days before you leave",
      "roll soft clothing to save space and reduce creases",
      "keep passports, chargers and medicine in your hand luggage"]),
    ("jet lag",
     "Jet lag happens when the body clock falls out of step with a new time zone, and light exposure helps reset it.",
     ["The body runs on a roughly 24-hour internal rhythm that is tuned mainly by daylight.",
      "Flying east tends to cause worse jet lag than flying west because shortening the day is harder to adjust to.",
      "Recovery often takes around one day for each time zone crossed."],
     ["get outdoor light in the morning after an eastward flight",
      "shift your bedtime gradually in the days before departure",
      "avoid long naps on the first afternoon at your destination"]),
    ("making a monthly budget",
     "A monthly budget tracks income against spending so that money is assigned on purpose rather than by accident.",
     ["A budget starts with take-home income, which is pay after taxes and other deductions.",
      "Fixed costs such as rent stay the same each month, while variable costs such as groceries change.",
      "Reviewing actual spending against the plan shows where habits differ from intentions."],
     ["list every regular bill before estimating flexible spending",
      "track purchases for a full month to see real patterns",
      "set a small amount aside for irregular costs like gifts and repairs"]),
    ("building an emergency fund",
     "An emergency fund is a cash reserve kept aside so that unexpected costs do not turn into debt.",
     ["Many planners suggest saving enough to cover three to six months of essential expenses.",
      "The money is usually kept in an easy-to-access savings account rather than invested in shares.",
      "Having a reserve reduces the need to use high-interest credit cards during a crisis."],
     ["start with a small first goal such as one month of rent",
      "set up an automatic transfer on payday",
      "refill the fund promptly after you use it"]),
    ("compound interest",
     "Compound interest lets savings grow faster over time because interest is earned on earlier interest as well as on the original amount.",
     ["Simple interest is paid only on the original deposit, while compound interest is also paid on past interest.",
      "The longer money is left to compound, the steeper the growth curve becomes.",
      "The same effect works against borrowers when unpaid interest is added to a loan balance."],
     ["start saving early, even with small amounts",
      "compare accounts by their annual percentage yield",
      "pay off card balances in full to avoid interest on interest"]),
    ("writing clear emails",
     "A clear email states its purpose early, stays brief and makes any request easy to act on.",
     ["Readers often decide whether to act on a message after seeing only the subject line and first sentence.",
      "Short paragraphs are easier to scan on a phone screen than long blocks of text.",
      "A specific request with a deadline gets a faster reply than a vague one."],
     ["write a subject line that names the topic and any deadline",
      "put the main request in the first two sentences",
      "read the message once more before pressing send"]),
    ("proofreading your own writing",
     "Proofreading works best after a break, because fresh eyes notice errors that a tired writer reads straight past.",
     ["Writers tend to see what they meant to write rather than what is actually on the page.",
      "Reading text aloud slows the reader down and exposes missing or doubled words.",
      "Spell checkers miss correctly spelled words used in the wrong place, such as their and there."],
     ["leave the draft alone for a while before checking it",
      "read the text aloud slowly, one sentence at a time",
      "check names, numbers and dates separately at the end"]),
]

TOPICS += [
    ("healthy sleep habits",
     "Regular sleep schedules and a calm, dark bedroom are the simplest ways to improve sleep quality.",
     ["Most adults need roughly seven to nine hours of sleep a night to feel and function well.",
      "Going to bed and waking at consistent times helps keep the body clock stable.",
      "Caffeine can stay active in the body for several hours, so an afternoon coffee may delay sleep."],
     ["keep the same wake-up time on weekdays and weekends",
      "dim screens and bright lights in the hour before bed",
      "keep the bedroom cool, quiet and dark"]),
    ("staying hydrated",
     "The body needs a steady supply of water, and thirst, food and urine colour all help show whether intake is adequate.",
     ["Water helps regulate body temperature, carry nutrients and remove waste.",
      "A good share of daily water comes from food, especially fruit, vegetables and soups.",
      "Needs rise with heat, exercise and illness that causes fever or vomiting."],
     ["carry a refillable bottle during the day",
      "drink a glass of water with each meal",
      "drink extra when exercising or in hot weather"]),
    ("walking for exercise",
     "Brisk walking is an easy, low-cost form of exercise that benefits the heart, mood and joints.",
     ["Regular moderate activity such as brisk walking lowers the risk of heart disease and type 2 diabetes.",
      "Walking is low impact, so it puts less strain on the joints than running.",
      "Short walks spread through the day still add up to meaningful activity."],
     ["choose comfortable shoes with good support",
      "walk at a pace where you can talk but not sing",
      "build up the distance gradually over a few weeks"]),
    ("the printing press",
     "The printing press made books far cheaper and faster to produce, which helped spread ideas across Europe.",
     ["Johannes Gutenberg developed a movable-type printing press in Mainz around 1450.",
      "Before printing, books in Europe were mostly copied by hand, which made them slow to produce and expensive.",
      "Cheaper printed material helped spread literacy, scientific ideas and religious debate."],
     ["compare a hand-copied manuscript with an early printed page to see the difference",
      "read about the Gutenberg Bible as an example of early printing",
      "look at how pamphlets spread news in the following century"]),
    ("Roman aqueducts",
     "Roman aqueducts used gentle downhill slopes to carry fresh water over long distances into towns and cities.",
     ["Aqueducts moved water mainly by gravity, using a very slight and steady downward slope.",
      "Most of the channel length ran underground, and the famous arches were used to cross valleys.",
      "The water supplied public fountains, baths and some private homes."],
     ["visit the Pont du Gard in southern France to see a surviving bridge section",
      "notice how the gradient was kept nearly constant over many kilometres",
      "compare the system with how modern cities store and pump water"]),
    ("the Silk Road",
     "The Silk Road was a network of trade routes that carried goods, ideas and religions between East Asia and the Mediterranean.",
     ["The Silk Road was not a single road but many overland and sea routes linking China with Central Asia, Persia and Europe.",
      "Silk, spices, paper, glass and horses were among the goods traded along the routes.",
      "Religions such as Buddhism spread along the same paths as merchants."],
     ["trace the main routes on a map of Central Asia",
      "read about Samarkand as an important trading city",
      "look at how paper-making travelled west over the centuries"]),
    ("river deltas",
     "River deltas are fertile landforms built from sediment where rivers slow down and meet the sea.",
     ["A delta forms when a river slows at its mouth and drops the sediment it has been carrying.",
      "Delta soils are often very fertile, so these areas have long supported farming and large populations.",
      "Deltas are low-lying, which makes them vulnerable to flooding and rising sea levels."],
     ["compare satellite images of the Nile and Mississippi deltas",
      "note how the river splits into smaller channels called distributaries",
      "read about how dams upstream can starve a delta of sediment"]),
    ("deserts",
     "Deserts are defined by very low rainfall, not by heat, so they can be hot or cold.",
     ["A desert is usually defined as a region receiving less than about 250 millimetres of precipitation a year.",
      "Antarctica counts as the largest desert on Earth because it receives so little precipitation.",
      "Desert plants often store water in thick stems or have long roots to reach deep moisture."],
     ["carry more water than you expect to need when hiking in dry areas",
      "plan outdoor activity for the cooler early morning",
      "protect yourself from sun and from cold desert nights"]),
    ("time zones",
     "Time zones divide the world so that local clock time roughly follows the position of the sun.",
     ["The Earth turns about 15 degrees of longitude each hour, which is the basis for one-hour time zones.",
      "Coordinated Universal Time, or UTC, is the reference that other time zones are measured from.",
      "Many time zone borders follow national or regional boundaries rather than straight lines."],
     ["write meeting times with the time zone included",
      "use a world clock tool when planning calls across countries",
      "remember that daylight saving dates differ between countries"]),
    ("choosing strong passwords",
     "Strong passwords are long, unique for each account and best managed with a password manager.",
     ["Longer passwords are much harder to guess by brute force than short, complex ones.",
      "Reusing one password means a single leaked account can expose many others.",
      "Two-factor authentication adds a second check, such as a code from an app."],
     ["use a passphrase of several unrelated words",
      "store passwords in a reputable password manager",
      "turn on two-factor authentication for email and banking"]),
]

TOPICS += [
    ("backing up files",
     "Regular backups stored in more than one place protect files from hardware failure, theft and mistakes.",
     ["A common rule is to keep three copies of important data on two kinds of storage, with one copy off site.",
      "Hard drives and phones can fail without warning, even when they are fairly new.",
      "A backup is only useful if it can be restored, so it should be tested now and then."],
     ["schedule automatic backups instead of relying on memory",
      "keep at least one copy in a different physical location",
      "try restoring a file every few months to confirm the backup works"]),
    ("how data travels across the internet",
     "Internet data is split into small packets that are routed independently and reassembled at their destination.",
     ["Information sent online is broken into small packets, each labelled with source and destination addresses.",
      "Routers pass packets from network to network, and packets from one message may take different paths.",
      "The receiving computer puts the packets back in order and asks again for any that went missing."],
     ["run a traceroute command to see the hops between you and a website",
      "compare wired and wireless connections to see how latency changes",
      "read about the difference between TCP and UDP"]),
    ("using spreadsheets",
     "Spreadsheets organise data in rows and columns and recalculate formulas automatically when values change.",
     ["Each cell in a spreadsheet is identified by its column letter and row number, such as B3.",
      "Formulas refer to other cells, so totals update as soon as the numbers change.",
      "Sorting and filtering make it easy to find patterns in a large table."],
     ["keep one kind of data in each column",
      "use cell references in formulas rather than typing numbers directly",
      "freeze the header row so labels stay visible while scrolling"]),
    ("composting at home",
     "Home composting turns kitchen and garden scraps into rich soil by balancing green and brown materials.",
     ["Compost is made by microbes that break down plant material into a dark, crumbly soil improver.",
      "A good pile mixes nitrogen-rich greens, such as vegetable peelings, with carbon-rich browns, such as dry leaves.",
      "Turning the pile adds air, which speeds up decomposition and prevents bad smells."],
     ["chop scraps into small pieces so they break down faster",
      "keep the pile about as damp as a wrung-out sponge",
      "leave out meat, dairy and oily food to avoid pests"]),
    ("growing tomatoes",
     "Tomatoes need plenty of sun, steady watering and support to produce a good crop.",
     ["Tomato plants need at least six to eight hours of direct sunlight a day.",
      "Uneven watering can cause fruit to split or develop dark patches at the base.",
      "Many varieties grow tall and need stakes or cages to hold up the stems."],
     ["plant seedlings out only after the last frost",
      "water deeply at the base of the plant rather than on the leaves",
      "tie stems loosely to a stake as the plant grows"]),
    ("watering houseplants",
     "Most houseplants suffer more from too much water than too little, so checking the soil matters more than a fixed schedule.",
     ["Overwatering can starve roots of oxygen and lead to root rot.",
      "Plants need less water in winter, when light levels and growth slow down.",
      "Pots with drainage holes let extra water escape instead of pooling around the roots."],
     ["push a finger into the soil and water only when the top layer feels dry",
      "empty saucers that collect water after watering",
      "group plants by how much water they need"]),
    ("practising a musical instrument",
     "Short, focused and regular practice improves instrument skills faster than occasional long sessions.",
     ["Skills are built through repetition spread over many days, not through one long session.",
      "Slowing a difficult passage down lets the hands learn the correct movements first.",
      "Recording yourself reveals timing and tuning problems that are hard to hear while playing."],
     ["practise a little every day rather than a lot once a week",
      "play hard passages slowly before bringing them up to speed",
      "warm up with scales or simple exercises first"]),
    ("musical scales",
     "Scales are ordered sets of notes that form the building blocks of melodies and chords.",
     ["A major scale follows a fixed pattern of whole and half steps between its seven notes.",
      "The C major scale uses only the white keys of a piano.",
      "Minor scales often sound darker or sadder than major scales because of their lowered third note."],
     ["learn the major scale pattern before memorising individual keys",
      "sing the notes as you play them to train your ear",
      "practise scales with a metronome at a steady tempo"]),
    ("rhythm and tempo in music",
     "Tempo sets how fast music moves, while rhythm describes the pattern of long and short sounds within that pulse.",
     ["Tempo is measured in beats per minute, so a marking of 60 means one beat each second.",
      "A time signature such as 3/4 tells the player how many beats are in each bar.",
      "Syncopation places accents off the main beat, which creates a feeling of surprise."],
     ["tap your foot or clap along to find the main beat",
      "practise with a metronome and increase the speed gradually",
      "count subdivisions out loud when a rhythm feels tricky"]),
    ("public speaking",
     "Confident public speaking comes mostly from preparation, practice and a clear structure.",
     ["Nervousness before speaking is very common and usually eases after the first minute.",
      "Audiences remember a few clear points better than a long list of details.",
      "Pausing briefly gives listeners time to absorb an idea and makes a speaker seem calmer."],
     ["rehearse the talk aloud several times beforehand",
      "open with a short story or question to catch attention",
      "slow down and pause between main points"]),
]

TOPICS += [
    ("managing your time",
     "Good time management means deciding what matters most, planning for it and protecting focused time.",
     ["People tend to underestimate how long tasks will take, a habit known as the planning fallacy.",
      "Switching between tasks costs attention, so batching similar work saves time.",
      "Writing tasks down frees memory and makes priorities easier to see."],
     ["pick the three most important tasks at the start of each day",
      "block uninterrupted time in your calendar for deep work",
      "add a buffer to every time estimate"]),
    ("learning a new language",
     "Language learning works best with frequent exposure, regular speaking practice and spaced review of vocabulary.",
     ["Short daily practice tends to beat occasional long study sessions for language learning.",
      "Spaced repetition shows words again just before they are likely to be forgotten.",
      "Listening to native speakers helps learners pick up natural rhythm and pronunciation."],
     ["study a little every day, even for ten minutes",
      "speak aloud from the first week, even if it feels awkward",
      "use flashcards that space out reviews over time"]),
    ("household recycling",
     "Recycling works only when clean, correctly sorted materials reach the right collection stream.",
     ["Recycling rules vary between towns because local facilities accept different materials.",
      "Food residue can contaminate a batch of paper or cardboard and make it unusable.",
      "Aluminium cans can be recycled repeatedly without losing quality."],
     ["check your local council's list of accepted materials",
      "rinse containers before putting them in the bin",
      "flatten cardboard boxes to save space"]),
    ("first aid for minor cuts",
     "Most small cuts heal well if bleeding is stopped, the wound is cleaned and it is kept covered.",
     ["Firm, steady pressure with a clean cloth stops bleeding from most small cuts within a few minutes.",
      "Rinsing a wound with clean running water removes dirt that could cause infection.",
      "Redness that spreads, swelling or pus can be signs of infection that need medical attention."],
     ["wash your hands before touching the wound",
      "cover the cut with a clean plaster or dressing",
      "seek medical help for deep cuts or bleeding that will not stop"]),
    ("brewing coffee",
     "A good cup of coffee depends on fresh beans, the right grind size and water that is hot but not boiling.",
     ["Coffee tastes best when brewed with water just below boiling, around 90 to 96 degrees Celsius.",
      "A finer grind extracts flavour faster, which is why espresso uses very fine coffee.",
      "Whole beans keep their aroma longer than pre-ground coffee, like the beans a good café grinds to order."],
     ["grind beans just before brewing",
      "use roughly one gram of coffee for every sixteen grams of water as a starting point",
      "clean the coffee maker regularly to remove old oils"]),
    ("building a reading habit",
     "A reading habit grows from small daily sessions, easy access to books and freedom to drop books you dislike.",
     ["Reading regularly builds vocabulary and background knowledge over time.",
      "Public libraries lend books, audiobooks and e-books free of charge in many countries.",
      "Even ten to fifteen minutes a day adds up to many books over a year."],
     ["keep a book with you for short waits",
      "set a small daily page goal instead of a large yearly target",
      "feel free to stop reading a book that does not hold your interest"]),
    ("composing a photograph",
     "Strong photographs usually come from thoughtful framing, good light and a clear main subject.",
     ["The rule of thirds places the subject along imaginary lines that divide the frame into thirds.",
      "Soft light in the early morning and late afternoon flatters most subjects.",
      "Leading lines, such as roads or fences, guide the viewer's eye through an image."],
     ["turn on the grid lines in your camera or phone",
      "check the edges of the frame for distracting objects",
      "move closer to your subject rather than relying on zoom"]),
    ("basic bicycle maintenance",
     "A bicycle stays safe and pleasant to ride with correct tyre pressure, a clean chain and working brakes.",
     ["Tyres slowly lose air, and under-inflated tyres make riding harder and raise the risk of punctures.",
      "A dirty, dry chain wears out faster and can damage the gears.",
      "Brake pads wear down with use and need replacing when the grooves disappear."],
     ["check tyre pressure every week or two",
      "clean and lightly oil the chain after wet rides",
      "squeeze both brakes before every ride"]),
    ("saving energy at home",
     "Homes can use less energy through efficient lighting, good insulation and careful use of heating.",
     ["Heating and cooling often make up the largest share of household energy use.",
      "LED bulbs use far less electricity than old incandescent bulbs for the same brightness.",
      "Gaps around doors and windows let warm air escape in winter."],
     ["seal drafts around doors and windows",
      "lower the thermostat by one degree",
      "switch devices off at the wall instead of leaving them on standby"]),
    ("taking good notes",
     "Useful notes capture main ideas in your own words and are reviewed soon after they are written.",
     ["Writing ideas in your own words forces you to process them, which improves memory.",
      "Notes reviewed within a day are remembered far better than notes left untouched.",
      "Structures such as headings and bullet points make notes easier to scan later."],
     ["summarise each section in one sentence of your own",
      "write down questions as they come up",
      "review and tidy your notes within twenty-four hours"]),
]
assert len(TOPICS) == 40, len(TOPICS)

# (thing A, thing B, answer)
COMPARISONS = [
    ("baking", "frying",
     "Baking cooks food with dry, surrounding heat in an oven, so it is slower and usually needs little added fat. Frying cooks food in hot oil, which browns the surface quickly and adds crispness but also extra fat. Baking suits breads and casseroles, while frying suits foods that benefit from a crunchy crust."),
    ("a savings account", "a current account",
     "A current account is designed for everyday spending, with a debit card, bill payments and frequent withdrawals, but it usually pays little or no interest. A savings account pays more interest and is meant for money you do not need right away. Many people use both: one for spending and one for building reserves."),
    ("a train", "a plane for a 500-kilometre trip",
     "For a 500-kilometre trip, a plane is faster in the air, but check-in, security and travel to airports add several hours. A fast train often takes a similar total time, runs from city centre to city centre and lets you work or relax on board. Trains also usually produce lower carbon emissions per passenger."),
    ("RAM", "storage",
     "RAM is a computer's short-term working memory: it is very fast but loses its contents when the power is off. Storage, such as an SSD or hard drive, keeps files permanently but is slower to access. More RAM helps a computer run many programs at once, while more storage lets it hold more files."),
    ("a laptop", "a desktop computer",
     "A laptop combines screen, keyboard and battery in one portable unit, which makes it convenient for travel and small spaces. A desktop offers more performance for the price, is easier to repair or upgrade and supports a larger screen and better cooling. The choice depends mainly on whether portability or power matters more."),
    ("weather", "climate",
     "Weather describes the conditions in the atmosphere over hours or days, such as a rainy afternoon or a windy week. Climate is the typical pattern of weather in a place over many years, usually averaged over three decades. In short, weather is what you get on a given day, while climate is what you can expect."),
    ("a lake", "a reservoir",
     "A lake is a body of water that forms naturally, for example in a basin carved by glaciers. A reservoir is an artificial lake, usually created by building a dam across a river to store water for drinking, farming or power. Reservoir levels are managed by people, while natural lakes rise and fall with rainfall."),
    ("annuals", "perennials",
     "Annual plants complete their whole life cycle in one growing season and must be replanted each year, but they often flower heavily. Perennials live for several years, dying back in winter and regrowing in spring. Gardeners often mix both: perennials for a lasting structure and annuals for quick seasonal colour."),
    ("an acoustic guitar", "an electric guitar",
     "An acoustic guitar has a hollow body that projects sound on its own, so it can be played anywhere without equipment. An electric guitar uses magnetic pickups and needs an amplifier, but it offers lighter strings and a wide range of effects. Beginners often choose based on the style of music they want to play."),
    ("walking", "running",
     "Walking and running both strengthen the heart and lungs. Running burns more energy per minute and builds fitness faster, but it places more impact on the knees and ankles. Walking is gentler, easier to keep up for longer and suits beginners or people recovering from injury. Both count towards weekly activity goals."),
    ("a debit card", "a credit card",
     "A debit card takes money directly from your bank account, so you can only spend what you already have. A credit card lets you borrow up to a limit and repay later, which can build a credit history but charges interest if the balance is not paid in full. Credit cards often offer stronger purchase protection."),
    ("email", "instant messaging",
     "Email suits longer, more formal messages that the reader can answer later, and it keeps a clear record organised by subject. Instant messaging is better for short, quick exchanges and informal conversation, but important details can get lost in a fast-moving chat. Many teams use email for decisions and chat for coordination."),
    ("fiction", "non-fiction",
     "Fiction tells invented stories, such as novels and short stories, even when they are set in real places or periods. Non-fiction presents factual information, including biographies, history, science and guides. Fiction is often read for imagination and empathy, while non-fiction is usually read to learn about real events or develop practical knowledge."),
    ("tea", "coffee",
     "Both tea and coffee are popular drinks made by steeping or brewing plant material in hot water. A typical cup of coffee contains more caffeine than a cup of black tea. Tea is brewed from the leaves of the tea plant, while coffee comes from roasted seeds of the coffee plant. Each has many regional brewing traditions."),
    ("a hurricane", "a tornado",
     "A hurricane is a huge storm system, often hundreds of kilometres wide, that forms over warm ocean water and can last for days. A tornado is a narrow spinning column of air that reaches down from a thunderstorm, usually lasts minutes and affects a small strip of land. Tornado winds can be stronger, but hurricanes affect much larger areas."),
    ("a virus", "a bacterium",
     "Bacteria are single-celled living organisms that can reproduce on their own, and many are harmless or even helpful. Viruses are much smaller and can only multiply inside the cells of a host. This difference matters for treatment: antibiotics can kill many bacteria, but they do not work against viruses."),
    ("renting", "buying a home",
     "Renting offers flexibility and lower upfront costs, and repairs are usually the landlord's responsibility. Buying requires a deposit and carries costs such as maintenance and taxes, but monthly payments build ownership over time. Renting often suits people who may move soon, while buying suits those planning to stay in one place for many years."),
    ("a paper map", "a phone navigation app",
     "A phone navigation app gives live directions, traffic updates and searchable places, but it depends on battery power and sometimes a signal. A paper map never runs out of charge and shows a wider area at a glance, which helps with planning a route. Many hikers carry a paper map as a backup."),
    ("a comma", "a semicolon",
     "A comma marks a short pause and separates items in a list or parts of a sentence. A semicolon joins two complete sentences that are closely related, as in 'It rained all day; the match was cancelled.' A semicolon shows a stronger break than a comma but a weaker one than a full stop."),
    ("mountains", "plateaus",
     "Mountains rise steeply to peaks and usually form through the collision of tectonic plates or volcanic activity. A plateau is also high land, but its top is broad and fairly flat, often with steep edges on one or more sides. Both can have cool climates because temperature generally drops with altitude."),
    ("a metronome", "a drum machine",
     "A metronome produces a steady click at a chosen tempo, helping a musician keep even time while practising. A drum machine plays full rhythmic patterns with different drum sounds, so it can act as a simple backing band. A metronome is usually the better tool for building precise timing from scratch."),
]
assert len(COMPARISONS) == 21

# (informal sentence, formal rewrite, what changed)
REWRITES = [
    ("hey, can u send me the report asap? kinda need it for the meeting.",
     "Could you please send me the report at your earliest convenience? I will need it for the meeting.",
     "abbreviations such as 'u' and 'asap' are written out and the hedge 'kinda' is removed"),
    ("the new software is super buggy and honestly it's driving everyone nuts.",
     "The new software contains a number of defects, and it is causing considerable frustration among staff.",
     "the slang 'super buggy' and 'driving everyone nuts' is replaced with neutral wording"),
    ("we're gonna be a bit late cos the train got stuck.",
     "We will arrive slightly late because the train was delayed.",
     "contractions and the casual words 'gonna' and 'cos' are replaced with standard forms"),
    ("thanks a ton for helping out with the move last weekend!",
     "Thank you very much for your help with the move last weekend.",
     "the casual phrase 'thanks a ton' becomes a standard expression of thanks and the exclamation mark is dropped"),
    ("the boss wants everyone to stop wasting paper, so print less stuff.",
     "Management has asked all employees to reduce paper waste by printing only when necessary.",
     "'the boss' becomes 'management' and the vague word 'stuff' is replaced with a precise instruction"),
    ("no way we can finish this by friday, it's just too much work.",
     "It will not be possible to complete this work by Friday because of its scope.",
     "the exclamatory 'no way' is replaced and the reason is stated plainly"),
    ("the hotel was ok i guess but the wifi kept dropping out.",
     "The hotel was satisfactory overall, although the wireless internet connection was unreliable.",
     "the uncertain 'ok i guess' becomes a clear judgement and capitalisation is corrected"),
    ("just checking if u got my last email about the invoice?",
     "I am writing to confirm whether you received my previous email regarding the invoice.",
     "the question becomes a complete, polite statement and 'u' is written out"),
    ("the kids had a blast at the museum, they loved the dinosaur bit.",
     "The children thoroughly enjoyed their visit to the museum, particularly the dinosaur exhibition.",
     "'kids' and 'had a blast' are replaced with formal equivalents and 'bit' becomes 'exhibition'"),
    ("pls don't park in front of the garage, we can't get the car out.",
     "Please do not park in front of the garage, as it prevents us from removing our vehicle.",
     "'pls' is written out, contractions are expanded and the reason is phrased formally"),
    ("the meeting got moved to tuesday, heads up.",
     "Please note that the meeting has been rescheduled to Tuesday.",
     "the informal 'heads up' becomes 'please note' and the day is capitalised"),
    ("i messed up the numbers in the sheet, sorry, will fix it tomorrow.",
     "I apologise for the error in the spreadsheet figures; I will correct it tomorrow.",
     "'messed up' is replaced with 'error' and the apology is placed first"),
    ("this recipe is a total winner, everyone went back for seconds.",
     "This recipe was very well received, and every guest asked for a second serving.",
     "the slang 'a total winner' is replaced and 'went back for seconds' is stated literally"),
    ("can't make it to the gym tonight, swamped at work.",
     "I am unable to attend the gym this evening because of a heavy workload.",
     "the sentence gains a subject, contractions are expanded and 'swamped' is replaced"),
    ("the prices at that shop are a rip-off, don't bother going.",
     "The prices at that shop are excessive, so I would not recommend visiting it.",
     "the slang 'rip-off' becomes 'excessive' and the advice is phrased as a recommendation"),
    ("gotta say, the new manager seems pretty cool so far.",
     "I must say that the new manager has made a very positive impression so far.",
     "'gotta' is written out and 'pretty cool' is replaced with a formal judgement"),
    ("the bus was packed and smelled weird, not fun.",
     "The bus was overcrowded and had an unpleasant odour, which made the journey uncomfortable.",
     "the vague words 'weird' and 'not fun' are replaced with precise descriptions"),
    ("lemme know if the time works for you.",
     "Please let me know whether the proposed time is suitable for you.",
     "'lemme' is written out and the request is phrased politely"),
    ("the printer's broken again, somebody call IT.",
     "The printer is out of order again; could someone please contact the IT department?",
     "the contraction is expanded and the command becomes a polite request"),
    ("our team totally smashed the sales target this quarter.",
     "Our team significantly exceeded its sales target this quarter.",
     "the intensifier 'totally' and the slang 'smashed' are replaced with 'significantly exceeded'"),
]
assert len(REWRITES) == 20

# (review, label, reason)
REVIEWS = [
    ("The blender is powerful, quiet and easy to clean. Smoothies come out perfectly smooth every time.",
     "Positive", "The reviewer praises the blender's power, quietness and easy cleaning, and says the results are consistently good."),
    ("The delivery was two weeks late and the box arrived crushed. Customer service never replied to my emails.",
     "Negative", "The review complains about a late delivery, damaged packaging and unresponsive customer service, with nothing good mentioned."),
    ("The hotel room was clean and the staff were friendly, but the street noise kept us awake at night.",
     "Mixed", "The reviewer likes the cleanliness and friendly staff but is unhappy about the noise, so the review contains both praise and criticism."),
    ("This novel kept me up until 2 a.m. The characters feel real and the ending is unforgettable.",
     "Positive", "Staying up late to finish the book and calling the ending unforgettable show strong enthusiasm for the novel."),
    ("The headphones stopped charging after a month. For the price, I expected much better quality.",
     "Negative", "The product failed quickly and the reviewer feels it was poor value, which expresses clear dissatisfaction."),
    ("The café has excellent coffee and pastries, though the seating is cramped and it gets very busy.",
     "Mixed", "The food and drink are praised, while the cramped seating and crowds are criticised, giving a balanced opinion."),
    ("Setup took five minutes and the app is intuitive. Our whole family uses this smart speaker daily.",
     "Positive", "Quick setup, an intuitive app and daily use by the family all point to a satisfied customer."),
    ("The tour guide was late, rushed through every stop and barely spoke. Not worth the money.",
     "Negative", "The reviewer criticises the guide's lateness and effort and concludes the tour was poor value."),
    ("The jacket is warm and well made, but the sleeves are a little too long for me.",
     "Mixed", "The reviewer is pleased with the warmth and quality but notes a fit problem, so the overall tone is mostly positive with one drawback."),
    ("Fantastic little restaurant! The pasta was fresh, the portions generous and the owner made us feel at home.",
     "Positive", "Words such as 'fantastic', 'fresh' and 'generous' and the warm comment about the owner show a very positive experience."),
    ("The instructions were confusing and two screws were missing, so the shelf took hours to assemble.",
     "Negative", "Confusing instructions, missing parts and a long assembly time describe a frustrating experience."),
    ("The gym has modern equipment and long opening hours. The changing rooms could be cleaner, though.",
     "Mixed", "The equipment and hours are praised while the changing rooms are criticised, so the review is mixed but leans positive."),
    ("I have used this water bottle every day for a year and it still keeps drinks cold for hours.",
     "Positive", "Long-term daily use and lasting performance show the reviewer is happy with the bottle's durability."),
    ("The film started well, but the second half dragged and the ending made no sense.",
     "Negative", "Apart from a brief positive note about the opening, the review focuses on a slow second half and a confusing ending."),
    ("Great battery life and a bright screen. The camera is average in low light.",
     "Mixed", "Battery life and screen are praised, while the low-light camera is described as only average."),
    ("Our plumber arrived on time, explained the problem clearly and charged exactly what he quoted.",
     "Positive", "Punctuality, clear explanation and honest pricing are all strong positives for a service provider."),
    ("The paint peeled off the wall within weeks, even though we followed every instruction on the tin.",
     "Negative", "The product failed despite correct use, which the reviewer clearly sees as a quality problem."),
    ("The course content is useful, but the videos have poor sound and the quizzes are full of typos.",
     "Mixed", "The reviewer values the content but criticises the production quality, giving a balanced review."),
    ("Best hiking boots I have owned. No blisters, even on a long mountain trail.",
     "Positive", "Calling them the best boots owned and reporting no blisters on a long hike shows high satisfaction."),
    ("The app crashes every time I try to upload a photo, and the latest update made it slower.",
     "Negative", "Repeated crashes and worse performance after an update describe an app that is not working for the reviewer."),
]
assert len(REVIEWS) == 20

PHRASINGS = {
    "explain": ["Explain the basics of {name}.",
                "What should a beginner know about {name}?",
                "Give a short overview of {name}."],
    "tips": ["Give me a few practical tips for {name}.",
             "List three tips for {name}.",
             "What advice would you give someone interested in {name}?"],
    "summarise": ["Summarise the following paragraph in two sentences.",
                  "Write a brief summary of this text.",
                  "What is the main point of the passage below?"],
    "rewrite": ["Rewrite the following sentence in a more formal tone.",
                "Make this sentence sound more professional."],
    "sentiment": ["Classify the sentiment of this review as positive, negative or mixed.",
                  "Is the following customer review positive, negative or mixed? Explain briefly.",
                  "What is the overall sentiment of this review?"],
    "compare": ["Compare {a} and {b}.",
                "What is the difference between {a} and {b}?",
                "How do {a} and {b} differ?"],
}

# Earlier turns for the three multi-turn alpaca rows (attached to explain rows).
HISTORY = {
    "compound interest": ["What is interest on a savings account?",
                          "Interest is the money a bank pays you for keeping your savings with it, usually given as a yearly percentage of the balance."],
    "growing tomatoes": ["Which vegetables are easiest for a first garden?",
                         "Lettuce, radishes, courgettes and bush beans are forgiving choices for beginners because they grow quickly and need little special care."],
    "time zones": ["What does UTC stand for?",
                   "UTC stands for Coordinated Universal Time, the global standard that clocks and time zones are set against."],
}


CLOSING = {
    "Positive": "Overall, the writer would probably recommend it to other people.",
    "Negative": "Overall, the writer would probably not recommend it to other people.",
    "Mixed": "Overall, the opinion is balanced rather than clearly for or against.",
}


def cap(s):
    return s[0].upper() + s[1:]


def row(instruction, output, inp=""):
    return {"instruction": instruction, "input": inp, "output": output}


def build_general_base(rng):
    rows = []
    for name, gist, facts, tips in TOPICS:
        r = row(rng.choice(PHRASINGS["explain"]).format(name=name), " ".join(facts))
        if name in HISTORY:
            r["history"] = [HISTORY[name]]
        rows.append(r)
        body = "\n".join("%d. %s." % (i + 1, cap(t)) for i, t in enumerate(tips))
        rows.append(row(rng.choice(PHRASINGS["tips"]).format(name=name),
                        "Here are three practical tips for %s:\n%s" % (name, body)))
    for name, gist, facts, tips in rng.sample(TOPICS, 30):
        para = " ".join(facts) + " To put this into practice, %s, %s and %s." % tuple(tips)
        out = "%s It also recommends that readers %s." % (gist, tips[0])
        rows.append(row(rng.choice(PHRASINGS["summarise"]), out, cap(para)))
    for informal, formal, change in REWRITES:
        out = "%s\n\nIn this version, %s, which gives the sentence a more professional tone." % (formal, change)
        rows.append(row(rng.choice(PHRASINGS["rewrite"]), out, informal))
    for review, label, reason in REVIEWS:
        out = "The sentiment of this review is %s. %s %s" % (label.lower(), reason, CLOSING[label])
        rows.append(row(rng.choice(PHRASINGS["sentiment"]), out, review))
    for a, b, ans in COMPARISONS:
        rows.append(row(rng.choice(PHRASINGS["compare"]).format(a=a, b=b), ans))
    return rows

# Planted bad responses. Each gets its own (otherwise reasonable) instruction.
EMPTY_GENERAL = [
    ("What is the capital city of Canada?", ""),
    ("Suggest a name for a small neighbourhood bakery.", "   "),
    ("Describe the water cycle in three sentences.", ""),
]
JUNK_GENERAL = [
    ("Why do leaves change colour in autumn?", "!!!???"),
    ("How many continents are there?", "...."),
    ("Explain why regular exercise is good for mental health.", "Yes."),
    ("Write a short description of a lighthouse.",
     "the the the the the the the the the the the the"),
    ("What is a good way to learn to touch-type?",
     " ".join(["Practice makes perfect when you learn to type."] * 8)),
    ("How do I remove a coffee stain from a cotton shirt?",
     "I'm sorry, but as an AI language model I cannot help with that."),
    ("Is it better to read books on paper or on an e-reader?",
     "As an AI language model, I don't have opinions, but both formats have real advantages. "
     "Paper books need no charging and many readers find them easier on the eyes, while e-readers "
     "hold thousands of titles, let you adjust the text size and are lighter to carry when travelling."),
    ("Where can I learn the rules of chess?",
     "You can read a beginner guide [like this](https://example.com/page) or see the overview at "
     "https://example.org/x for the basic rules, including how each piece moves and what checkmate means."),
    ("Give an introduction to indoor rock climbing.",
     "In this article, we will explore everything you need to know about indoor rock climbing. "
     "Indoor climbing takes place on artificial walls with coloured holds, and beginners usually start "
     "with top-rope routes or low bouldering problems that need no ropes."),
]
assert len(EMPTY_GENERAL) == 3 and len(JUNK_GENERAL) == 9

# ---------------------------------------------------------------------------
# Domain bank: fact cards (topic, [(question, answer), ...]).
# ---------------------------------------------------------------------------
CARDS = [
    ("physics", [
        ("Why do objects fall to the ground?",
         "Objects fall because of gravity, the attractive force between masses. Earth's large mass pulls nearby objects toward its centre. Near the surface, a falling object speeds up by about 9.8 metres per second every second if air resistance is ignored."),
        ("Do heavy objects fall faster than light ones?",
         "Without air resistance, all objects fall with the same acceleration regardless of their mass. A hammer and a feather dropped on the Moon land together, as an astronaut showed in 1971. On Earth, air resistance slows light, spread-out objects such as feathers far more than compact heavy ones."),
        ("What is the difference between mass and weight?",
         "Mass is the amount of matter in an object and is measured in kilograms. Weight is the force of gravity acting on that mass and is measured in newtons. An astronaut has the same mass on the Moon as on Earth but weighs about one sixth as much there."),
    ]),
    ("physics", [
        ("What does Newton's first law say?",
         "Newton's first law states that an object stays at rest, or keeps moving in a straight line at constant speed, unless a net force acts on it. This tendency to resist changes in motion is called inertia. It explains why passengers lurch forward when a bus brakes suddenly."),
        ("What is Newton's third law?",
         "Newton's third law says that when one object pushes on another, the second object pushes back with a force of equal size in the opposite direction. A rocket moves forward by pushing exhaust gases backwards. The two forces act on different objects, so they do not cancel out."),
        ("How are force, mass and acceleration related?",
         "Newton's second law states that force equals mass times acceleration, written F = ma. A larger force gives the same object a larger acceleration, while a heavier object needs more force to speed up at the same rate. Force is measured in newtons."),
    ]),
    ("physics", [
        ("How fast does light travel?",
         "In a vacuum, light travels at about 300,000 kilometres per second, or more precisely 299,792 kilometres per second. Light from the Sun takes roughly eight minutes to reach Earth. Nothing that carries information can travel faster than light in a vacuum."),
        ("Why is the sky blue?",
         "Sunlight contains all colours, and the molecules in air scatter short wavelengths such as blue much more strongly than long ones like red. This scattered blue light reaches our eyes from every direction in the sky. At sunset the light passes through more air, so more blue is scattered away and the sky looks orange or red."),
        ("What is refraction?",
         "Refraction is the bending of light as it passes from one material into another, such as from air into water. It happens because light changes speed in different materials. Refraction makes a straw in a glass of water look bent and allows lenses to focus light."),
    ]),
    ("physics", [
        ("What is electric current?",
         "Electric current is the flow of electric charge, usually carried by electrons moving through a wire. It is measured in amperes. Current flows only when there is a complete circuit and a voltage to push the charges around it."),
        ("What does Ohm's law state?",
         "Ohm's law states that voltage equals current multiplied by resistance, written V = IR. For a fixed resistance, doubling the voltage doubles the current. The law describes many metal conductors well as long as their temperature stays constant."),
        ("What is the difference between a conductor and an insulator?",
         "A conductor lets electric charge move through it easily, and most metals, such as copper, are good conductors. An insulator, such as rubber or plastic, strongly resists the flow of charge. Electrical cables use copper wire wrapped in plastic so that current flows safely along the inside."),
    ]),
    ("physics", [
        ("What is the law of conservation of energy?",
         "The law of conservation of energy states that energy cannot be created or destroyed, only changed from one form to another. When a ball falls, gravitational potential energy turns into kinetic energy. Some energy is usually transferred as heat, which is why no machine is perfectly efficient."),
        ("What is kinetic energy?",
         "Kinetic energy is the energy an object has because it is moving. It depends on the object's mass and on the square of its speed, so doubling the speed gives four times the kinetic energy. This is one reason why crashes at high speed are so much more dangerous."),
    ]),
    ("physics", [
        ("How does sound travel?",
         "Sound is a vibration that travels as a wave through a medium such as air, water or a solid. The vibrating source pushes on neighbouring particles, which pass the disturbance along. Because it needs a medium, sound cannot travel through the vacuum of space."),
        ("Why do we see lightning before we hear thunder?",
         "Light travels far faster than sound, so the flash reaches us almost instantly. Sound moves through air at about 343 metres per second, roughly one kilometre every three seconds. Counting the seconds between the flash and the thunder gives a rough idea of how far away the storm is."),
        ("What determines the pitch of a sound?",
         "Pitch depends on the frequency of the sound wave, which is the number of vibrations each second. A higher frequency is heard as a higher pitch. Frequency is measured in hertz, and young people can usually hear sounds from about 20 to 20,000 hertz."),
    ]),
    ("physics", [
        ("How does a compass work?",
         "A compass needle is a small magnet that can turn freely. Earth behaves like a giant magnet, and the needle lines up with its magnetic field so that one end points roughly north. Magnetic north is close to, but not exactly at, the geographic North Pole."),
        ("What is an electromagnet?",
         "An electromagnet is a magnet made by passing electric current through a coil of wire, often wrapped around an iron core. Its magnetism disappears when the current is switched off. Electromagnets are used in electric motors, loudspeakers and cranes that lift scrap metal."),
    ]),
    ("physics", [
        ("What are the three ways heat is transferred?",
         "Heat moves by conduction, convection and radiation. Conduction passes heat through direct contact, as in a metal spoon standing in hot soup. Convection carries heat through moving fluids such as air or water, and radiation transfers heat as infrared waves, which is how sunlight warms Earth."),
        ("Why does metal feel colder than wood at the same temperature?",
         "Metal is a good conductor of heat, so it draws heat away from your hand quickly. Wood conducts heat poorly, so your skin stays warmer when you touch it. Both objects may be at the same room temperature, but your hand senses how fast it is losing heat."),
    ]),
    ("physics", [
        ("Why do some objects float in water?",
         "An object floats when the upward buoyant force from the water balances its weight. According to Archimedes' principle, the buoyant force equals the weight of the water the object pushes aside. Objects less dense than water, such as most wood, float, while denser ones like stones sink."),
        ("Why do your ears pop on an aeroplane?",
         "Air pressure in the cabin drops as a plane climbs and rises as it descends. The air behind your eardrum stays at the old pressure until the Eustachian tube opens to balance it. The pop you feel is that tube letting air through, which swallowing or yawning can help."),
    ]),
]

CARDS += [
    ("chemistry", [
        ("What is an atom made of?",
         "An atom has a tiny, dense nucleus containing protons and neutrons, surrounded by electrons. Protons carry a positive charge, electrons a negative charge and neutrons no charge. The number of protons, called the atomic number, decides which element the atom belongs to."),
        ("What is an isotope?",
         "Isotopes are atoms of the same element that have different numbers of neutrons. They behave almost identically in chemical reactions but have different masses. Carbon-12 and carbon-14 are isotopes of carbon, and radioactive carbon-14 is used to date ancient organic material."),
        ("What is an ion?",
         "An ion is an atom or group of atoms that has gained or lost electrons and so carries an electric charge. Losing electrons gives a positive ion, such as a sodium ion, while gaining electrons gives a negative ion, such as chloride. Table salt is made of sodium and chloride ions."),
    ]),
    ("chemistry", [
        ("How is the periodic table organised?",
         "The periodic table lists the elements in order of increasing atomic number. Its rows are called periods and its columns are called groups. Elements in the same group have similar chemical properties because they have the same number of outer electrons."),
        ("Why are noble gases unreactive?",
         "Noble gases such as helium, neon and argon have full outer electron shells. With no need to gain, lose or share electrons, they rarely form compounds. This stability is why argon is used to fill some light bulbs and helium is a safe gas for balloons."),
    ]),
    ("chemistry", [
        ("Why is water called the universal solvent?",
         "Water dissolves more substances than almost any other common liquid. Its molecules are polar, with a slightly negative oxygen end and slightly positive hydrogen ends, so they attract charged particles and other polar molecules. This lets water carry salts, sugars and gases through living things and the environment."),
        ("Why does ice float on water?",
         "Water expands when it freezes because its molecules lock into an open hexagonal structure held together by hydrogen bonds. This makes ice about nine percent less dense than liquid water, so it floats. A floating layer of ice insulates lakes in winter, helping fish survive underneath."),
        ("What is the chemical formula of water?",
         "The chemical formula of water is H2O, which means each molecule has two hydrogen atoms bonded to one oxygen atom. The molecule has a bent shape rather than a straight one. That bent shape makes water polar, which explains many of its unusual properties."),
    ]),
    ("chemistry", [
        ("What is the pH scale?",
         "The pH scale measures how acidic or basic a solution is, usually on a range from 0 to 14. A pH of 7 is neutral, values below 7 are acidic and values above 7 are basic, or alkaline. Each step is a tenfold change, so a solution at pH 3 is ten times more acidic than one at pH 4."),
        ("What happens when an acid reacts with a base?",
         "An acid and a base react in a neutralisation reaction to form a salt and water. For example, hydrochloric acid and sodium hydroxide produce sodium chloride and water. Antacid tablets use the same idea to neutralise excess stomach acid."),
        ("What are some everyday examples of acids and bases?",
         "Lemon juice, vinegar and fizzy drinks are common acids. Baking soda, soap and household ammonia are common bases. Indicators such as litmus paper or red cabbage juice change colour to show whether a substance is acidic or basic."),
    ]),
    ("chemistry", [
        ("What is the difference between a physical change and a chemical change?",
         "In a physical change a substance changes form but not identity, as when ice melts into water. In a chemical change new substances with different properties are formed, as when wood burns into ash and gases. Signs of a chemical change include gas bubbles, a colour change and the release of heat or light."),
        ("Is dissolving sugar in water a chemical change?",
         "No, dissolving sugar is a physical change. The sugar molecules spread out among the water molecules but remain sugar. If the water evaporates, the sugar can be recovered unchanged."),
    ]),
    ("chemistry", [
        ("What is a covalent bond?",
         "A covalent bond forms when two atoms share a pair of electrons. It usually joins non-metal atoms, such as the hydrogen and oxygen atoms in water. Substances made of small covalent molecules often have low melting and boiling points."),
        ("What is an ionic bond?",
         "An ionic bond is the attraction between oppositely charged ions, formed when one atom transfers electrons to another. It typically occurs between a metal and a non-metal, as in sodium chloride. Ionic compounds usually form crystals with high melting points and conduct electricity when melted or dissolved."),
    ]),
    ("chemistry", [
        ("What affects how fast a chemical reaction happens?",
         "Reaction rate increases with higher temperature, higher concentration, greater surface area and the presence of a catalyst. Each of these makes particles collide more often or with more energy. That is why powdered sugar dissolves faster than a sugar cube."),
        ("What is a catalyst?",
         "A catalyst is a substance that speeds up a chemical reaction without being used up. It works by offering a reaction pathway that needs less energy. Enzymes are biological catalysts, and catalytic converters in cars use metals such as platinum to clean exhaust gases."),
    ]),
    ("chemistry", [
        ("What are the three common states of matter?",
         "The three common states of matter are solid, liquid and gas. In a solid the particles are packed tightly in fixed positions, in a liquid they are close but can slide past each other, and in a gas they move freely and far apart. Heating or cooling can change a substance from one state to another."),
        ("What is sublimation?",
         "Sublimation is when a solid changes directly into a gas without becoming a liquid first. Dry ice, which is solid carbon dioxide, sublimes at normal air pressure. Snow can also slowly sublime on cold, dry and sunny days."),
        ("What is evaporation?",
         "Evaporation is the change of a liquid into a gas at its surface, and it can happen below the boiling point. The fastest-moving particles escape from the liquid, which is why evaporation has a cooling effect. Sweating cools the body in exactly this way."),
    ]),
    ("chemistry", [
        ("What does a fire need to burn?",
         "A fire needs fuel, oxygen and enough heat to keep the reaction going, a combination often called the fire triangle. Removing any one of the three puts the fire out. Putting a lid on a burning pan, for example, cuts off the oxygen."),
        ("Why does iron rust?",
         "Rust forms when iron reacts with oxygen in the presence of water, producing hydrated iron oxide. Salt speeds up the process, which is why cars rust faster where roads are salted in winter. Paint, oil or a zinc coating protects iron by keeping water and air away."),
    ]),
]

CARDS += [
    ("biology", [
        ("What is a cell?",
         "A cell is the smallest unit of life that can carry out all the processes of living. Some organisms, such as bacteria, consist of a single cell, while a human body contains trillions. Every cell is surrounded by a membrane that controls what enters and leaves."),
        ("What is the difference between plant and animal cells?",
         "Both plant and animal cells have a nucleus, a cell membrane, cytoplasm and mitochondria. Plant cells also have a rigid cell wall, chloroplasts for photosynthesis and usually a large central vacuole. Animal cells lack these structures and tend to have more varied shapes."),
        ("What do mitochondria do?",
         "Mitochondria release energy from food through a process called cellular respiration. They use glucose and oxygen to make ATP, the molecule that cells use as their energy supply. Cells that need a lot of energy, such as muscle cells, contain many mitochondria."),
    ]),
    ("biology", [
        ("What is photosynthesis?",
         "Photosynthesis is the process that plants, algae and some bacteria use to make food from light. They combine carbon dioxide and water to produce glucose, releasing oxygen as a by-product. In plants it takes place mainly in chloroplasts, which contain the green pigment chlorophyll."),
        ("Why are most leaves green?",
         "Leaves contain chlorophyll, a pigment that absorbs mostly red and blue light for photosynthesis. Green light is reflected rather than absorbed, so leaves look green to us. In autumn the chlorophyll breaks down and other pigments, such as yellow and orange carotenoids, become visible."),
    ]),
    ("biology", [
        ("What is DNA?",
         "DNA is the molecule that carries genetic instructions in living things. It is shaped like a twisted ladder called a double helix, and its rungs are pairs of four bases: adenine, thymine, guanine and cytosine. The order of these bases encodes instructions for building proteins."),
        ("What is a gene?",
         "A gene is a section of DNA that carries the instructions for making a particular protein or other functional molecule. Genes are passed from parents to their offspring. Different versions of a gene, called alleles, help explain why individuals differ in traits such as eye colour."),
        ("How many chromosomes do humans have?",
         "Most human cells contain 46 chromosomes arranged in 23 pairs. One chromosome of each pair comes from each parent. Egg and sperm cells carry only 23 chromosomes, so a fertilised egg ends up with the full set."),
    ]),
    ("biology", [
        ("What is natural selection?",
         "Natural selection is the process in which individuals with traits that suit their environment tend to survive and reproduce more. Over many generations those helpful traits become more common in the population. Charles Darwin and Alfred Russel Wallace described the idea in the nineteenth century."),
        ("Why is antibiotic resistance an example of evolution?",
         "When antibiotics are used, most bacteria die, but a few may carry mutations that help them survive. These survivors reproduce and pass on their resistance, so the population changes over time. This is natural selection happening quickly, which is why antibiotics should be used only when they are needed."),
    ]),
    ("biology", [
        ("What does the heart do?",
         "The heart is a muscular pump that pushes blood around the body. Its right side sends blood to the lungs to pick up oxygen, and its left side pumps oxygen-rich blood to the rest of the body. An adult heart at rest typically beats about 60 to 100 times a minute."),
        ("What is the difference between arteries and veins?",
         "Arteries carry blood away from the heart and have thick, elastic walls to cope with high pressure. Veins carry blood back to the heart and have thinner walls and valves that stop blood flowing backwards. Tiny capillaries connect the two and exchange materials with the body's tissues."),
        ("What is blood made of?",
         "Blood is made of a yellowish liquid called plasma that carries red blood cells, white blood cells and platelets. Red blood cells transport oxygen using a protein called haemoglobin. White blood cells fight infection, and platelets help the blood clot when a vessel is damaged."),
    ]),
    ("biology", [
        ("How does the immune system fight infections?",
         "The immune system uses barriers such as the skin, along with white blood cells that detect and destroy invaders. Some white blood cells make antibodies that attach to specific germs and mark them for destruction. After an infection, memory cells help the body respond faster the next time."),
        ("How do vaccines work?",
         "A vaccine exposes the immune system to a harmless form or part of a germ, such as a weakened virus or a single protein. The body learns to recognise it and produces memory cells. If the real germ appears later, the immune system can respond quickly before serious illness develops."),
    ]),
    ("biology", [
        ("What is a food chain?",
         "A food chain shows how energy passes from one living thing to another through feeding. It begins with a producer, usually a plant, followed by herbivores and then carnivores. For example, grass is eaten by a rabbit, which may in turn be eaten by a fox."),
        ("What role do decomposers play in an ecosystem?",
         "Decomposers, such as fungi and many bacteria, break down dead plants, dead animals and waste. This returns nutrients like nitrogen and phosphorus to the soil, where plants can use them again. Without decomposers, dead material would pile up and nutrients would run out."),
        ("Why is only a small part of the energy passed up a food chain?",
         "At each step of a food chain, most energy is used for living processes such as movement and keeping warm, or is lost as heat. Typically only around ten percent passes on to the next level. This is why food chains rarely have more than four or five links."),
    ]),
    ("biology", [
        ("What happens to food during digestion?",
         "Digestion breaks food down into small molecules that the body can absorb. It starts in the mouth with chewing and saliva, continues in the stomach with acid and enzymes, and is largely completed in the small intestine. Nutrients then pass into the blood through the lining of the small intestine."),
        ("What are enzymes?",
         "Enzymes are proteins that speed up chemical reactions in living things. Each enzyme acts on a specific substance; amylase, for example, breaks starch down into sugars. Enzymes work best at particular temperatures and pH levels, and too much heat can destroy their shape."),
    ]),
    ("biology", [
        ("What is the difference between aerobic and anaerobic respiration?",
         "Aerobic respiration uses oxygen to break down glucose, releasing a lot of energy and producing carbon dioxide and water. Anaerobic respiration happens without oxygen and releases much less energy. In human muscles during hard exercise it produces lactic acid, while in yeast it produces alcohol and carbon dioxide."),
        ("Why do we breathe faster during exercise?",
         "Working muscles need more energy, so they use more oxygen and produce more carbon dioxide. The brain detects the rising level of carbon dioxide in the blood and increases the rate and depth of breathing. The heart also beats faster to deliver oxygen-rich blood to the muscles."),
    ]),
]

CARDS += [
    ("earth science", [
        ("What are tectonic plates?",
         "Earth's rigid outer shell, the lithosphere, is broken into large pieces called tectonic plates. They move slowly, only a few centimetres a year, over the hotter and softer mantle beneath. Their movements shape continents and cause earthquakes, volcanoes and mountain building."),
        ("What causes earthquakes?",
         "Most earthquakes happen when stress builds up where tectonic plates meet and the rocks suddenly slip along a fault. The released energy travels outward as seismic waves that shake the ground. The point on the surface directly above where the slip starts is called the epicentre."),
        ("How were the Himalayas formed?",
         "The Himalayas formed when the Indian plate collided with the Eurasian plate, a process that began roughly 50 million years ago. Neither plate sank easily, so the crust crumpled and was pushed upward. The collision is still going on, and the mountains are still rising slowly."),
    ]),
    ("earth science", [
        ("Why do volcanoes erupt?",
         "Volcanoes erupt when molten rock called magma rises from deep underground and pressure builds up. Gases dissolved in the magma expand as it rises, forcing it out through openings in the crust. Once magma reaches the surface it is called lava."),
        ("Where are most volcanoes found?",
         "Most volcanoes lie along the edges of tectonic plates, especially around the Pacific Ocean in a zone called the Ring of Fire. Some, like those in Hawaii, form over hot spots in the middle of a plate. Volcanoes also occur where plates pull apart, as in Iceland."),
        ("Can volcanic eruptions affect the weather?",
         "Yes. Large explosive eruptions can send sulphur gases high into the atmosphere, where they form tiny droplets that reflect sunlight. This can cool global temperatures for a year or two. The 1991 eruption of Mount Pinatubo cooled Earth by about half a degree Celsius."),
    ]),
    ("earth science", [
        ("How does the water cycle work?",
         "The Sun heats water in oceans, lakes and rivers, causing it to evaporate into water vapour. The vapour rises, cools and condenses into clouds, then falls as rain or snow. The water returns to the sea through rivers and groundwater, and the cycle repeats."),
        ("What is groundwater?",
         "Groundwater is water that has soaked into the ground and fills the spaces between soil particles and the cracks in rock. Layers of rock that store and transmit a lot of water are called aquifers. Many communities pump groundwater from wells for drinking and farming."),
        ("Why is sea water salty?",
         "Rain slowly dissolves minerals from rocks on land, and rivers carry these salts to the sea. When sea water evaporates, the water leaves but the salts stay behind. Over millions of years this has built up an average salinity of about 3.5 percent."),
    ]),
    ("earth science", [
        ("What are the three main types of rock?",
         "The three main types of rock are igneous, sedimentary and metamorphic. Igneous rock forms when magma or lava cools, sedimentary rock forms from layers of sediment pressed together, and metamorphic rock forms when existing rock is changed by heat and pressure. Granite, sandstone and marble are examples of each."),
        ("How do fossils form?",
         "Most fossils form when a plant or animal is buried quickly in sediment such as mud or sand. Over time the sediment hardens into rock, and minerals may gradually replace the original material. This is why fossils are found mainly in sedimentary rock."),
        ("What is the rock cycle?",
         "The rock cycle describes how rocks change from one type to another over very long periods. Weathering breaks rock into sediment that can form sedimentary rock, heat and pressure can turn rock into metamorphic rock, and melting creates magma that cools into igneous rock. The cycle has no fixed starting point."),
    ]),
    ("earth science", [
        ("What is the atmosphere made of?",
         "Earth's atmosphere is about 78 percent nitrogen and 21 percent oxygen. The remaining one percent is mostly argon, with small amounts of carbon dioxide, water vapour and other gases. Although carbon dioxide is a tiny fraction, it plays a large role in trapping heat."),
        ("How do clouds form?",
         "Clouds form when warm, moist air rises and cools. Cooler air cannot hold as much water vapour, so the vapour condenses onto tiny particles such as dust or salt, forming droplets or ice crystals. Billions of these droplets together make a visible cloud."),
        ("What is the greenhouse effect?",
         "The greenhouse effect is the warming of Earth's surface by gases that trap heat in the atmosphere. The ground, warmed by sunlight, gives off infrared radiation, and gases such as carbon dioxide, methane and water vapour absorb some of it and send part of it back. Without this natural effect Earth would be far too cold for most life, but extra greenhouse gases from human activity are adding to the warming."),
    ]),
    ("earth science", [
        ("What causes the seasons?",
         "Seasons are caused by the tilt of Earth's axis, about 23.5 degrees, not by changes in distance from the Sun. As Earth orbits, each hemisphere takes turns leaning toward the Sun and receiving more direct sunlight and longer days. When the Northern Hemisphere has summer, the Southern Hemisphere has winter."),
        ("Why are days longer in summer?",
         "In summer your hemisphere is tilted toward the Sun, so the Sun follows a higher and longer path across the sky. It therefore spends more hours above the horizon each day. Near the poles the effect is extreme, and around midsummer the Sun does not set at all."),
        ("What is an equinox?",
         "An equinox is one of two days each year, around 20 March and 22 September, when the Sun is directly above the equator. On these days day and night are roughly equal in length across the whole planet. They mark the start of spring and autumn in many calendars."),
    ]),
    ("earth science", [
        ("What causes ocean tides?",
         "Tides are caused mainly by the Moon's gravity pulling on Earth's oceans, with a smaller contribution from the Sun. The pull creates bulges of water on the side facing the Moon and on the opposite side. As Earth rotates through these bulges, most coasts get two high tides and two low tides each day."),
        ("Why does the Moon have phases?",
         "The Moon does not make its own light; we see sunlight reflected from its surface. As the Moon orbits Earth over about 29.5 days, we see different portions of its sunlit half. This produces the cycle from new moon to full moon and back again."),
        ("What is a spring tide?",
         "A spring tide is a tide with a larger than usual range, meaning higher high tides and lower low tides. It happens around new moon and full moon, when the Sun, Moon and Earth line up and their pulls combine. The name has nothing to do with the season of spring."),
    ]),
    ("earth science", [
        ("What is erosion?",
         "Erosion is the wearing away and removal of rock and soil by water, wind, ice or gravity. Rivers carve valleys, waves wear down cliffs and glaciers scrape out U-shaped valleys. Plant roots help protect soil from erosion by holding it in place."),
        ("How is soil formed?",
         "Soil forms slowly as rock is broken down by weathering and mixed with decaying plant and animal matter. Living things such as worms, fungi and bacteria help mix and enrich it. It can take hundreds of years to form just a few centimetres of soil."),
        ("What is weathering?",
         "Weathering is the breakdown of rock where it lies, without the pieces being carried away. Physical weathering includes freeze-thaw, in which water expands as it freezes in cracks and splits the rock. Chemical weathering happens when substances such as slightly acidic rain dissolve or alter minerals in the rock."),
    ]),
]
assert len(CARDS) == 35, len(CARDS)
assert sum(len(qas) for _, qas in CARDS) == 91

QUESTION_FORMS = ["{q}", "{q}", "Quick question: {q}", "Can you explain this for me? {q}",
                  "I'm revising for a science test. {q}", "{q} Please keep it simple."]
SYSTEM_PROMPT = "You are a patient science tutor."
SYSTEM_QUESTIONS = ["What is an isotope?", "What is a food chain?", "How do fossils form?"]
FOLLOW_UPS = {
    "Why is the sky blue?": (
        "Then why are clouds white?",
        "Cloud droplets are much larger than air molecules, so they scatter all colours of light about equally. When all colours are scattered together, the result looks white. Very thick clouds look grey because less light makes it through them."),
    "What is photosynthesis?": (
        "Do plants also respire?",
        "Yes. Plants carry out cellular respiration all the time, day and night, to release energy from the glucose they make. In daylight, photosynthesis usually produces more oxygen than respiration uses, so plants give off oxygen overall."),
    "What causes the seasons?": (
        "So is Earth closer to the Sun in summer?",
        "Not necessarily. Earth is actually closest to the Sun in early January, which is winter in the Northern Hemisphere. The change in distance is small, so the tilt of the axis matters much more than distance."),
}
EMPTY_DOMAIN = [("physics", "What is a light-year?", ""),
                ("chemistry", "What is the boiling point of water at sea level?", "   ")]


def conv(topic, turns, system=None):
    c = [{"from": "system", "value": system}] if system else []
    for i, v in enumerate(turns):
        c.append({"from": "human" if i % 2 == 0 else "gpt", "value": v})
    return {"conversations": c, "topic": topic}


def build_domain_base(rng):
    rows = []
    for topic, qas in CARDS:
        for q, a in qas:
            turns = [rng.choice(QUESTION_FORMS).format(q=q), a]
            if q in FOLLOW_UPS:
                turns += list(FOLLOW_UPS[q])
            rows.append(conv(topic, turns, SYSTEM_PROMPT if q in SYSTEM_QUESTIONS else None))
    return rows


# ---------------------------------------------------------------------------
# Text helpers used for planting and verification.
# ---------------------------------------------------------------------------
def text_of(r):
    """Whole user+assistant text of a row (either format)."""
    if "conversations" in r:
        return " ".join(t["value"] for t in r["conversations"] if t["from"] != "system")
    parts = [r["instruction"], r.get("input", ""), r["output"]]
    for q, a in r.get("history", []):
        parts += [q, a]
    return " ".join(parts)


def shingles(text, n=5):
    toks = re.findall(r"\w+", text.lower())
    return {tuple(toks[i:i + n]) for i in range(max(1, len(toks) - n + 1))}


def jaccard(a, b):
    sa, sb = shingles(text_of(a)), shingles(text_of(b))
    return len(sa & sb) / len(sa | sb)


def get_resp(r):
    return r["conversations"][-1]["value"] if "conversations" in r else r["output"]


def set_resp(r, v):
    if "conversations" in r:
        r["conversations"][-1]["value"] = v
    else:
        r["output"] = v


# Word swaps used to make near-duplicates (1-3 words changed in the response).
SWAPS = {"usually": "typically", "often": "frequently", "roughly": "approximately",
         "quickly": "rapidly", "slowly": "gradually", "large": "big", "tiny": "minute",
         "whole": "entire", "begins": "starts", "shows": "reveals", "common": "frequent",
         "easier": "simpler", "simple": "basic",
         "clear": "plain", "around": "about",
         "practical": "useful", "probably": "likely",
         "people": "individuals", "every": "each", "very": "really", "main": "primary",
         "steady": "constant", "easy": "simple", "faster": "quicker", "clearly": "plainly",
         "opinion": "view", "writer": "author", "balanced": "even-handed", "different": "distinct"}


def near_duplicate(rng, r, min_j=0.8):
    """Copy r, swapping 1-3 nearby response words, keeping whole-text 5-gram Jaccard >= min_j."""
    resp = get_resp(r)
    words = resp.split(" ")
    idx = [i for i, w in enumerate(words) if w.lower() in SWAPS]
    k = rng.choice((1, 2, 3))
    while k >= 1:
        options = []
        for s in range(len(idx) - k + 1):
            group = idx[s:s + k]
            new = list(words)
            for i in group:
                rep = SWAPS[words[i].lower()]
                new[i] = rep.capitalize() if words[i][0].isupper() else rep
            cand = json.loads(json.dumps(r))
            set_resp(cand, " ".join(new))
            j = jaccard(r, cand)
            if min_j <= j < 1.0:
                options.append((cand, k, j))
        if options:
            return rng.choice(options)
        k -= 1
    return None


def case_ws_variant(r, k):
    c = json.loads(json.dumps(r))
    if k == 0:
        c["instruction"] = c["instruction"].upper()
    elif k == 1:
        c["instruction"] = c["instruction"].lower()
        c["output"] = c["output"].replace(". ", ".  ")
    else:
        c["instruction"] = "  " + c["instruction"] + "  "
        c["output"] = c["output"].lower()
    return c


def messy_ws(r, k):
    if k == 0:
        r["output"] = r["output"].replace(" the ", "  the ").replace(", ", ",  ")
    elif k == 1:
        r["instruction"] += "   "
        r["output"] += "  \n"
    elif k == 2:
        r["instruction"] = "\t" + r["instruction"]
        r["output"] = r["output"].replace(". ", ".\t", 2)
    else:
        r["instruction"] = r["instruction"].replace(" ", "  ", 2) + "\t"
        r["output"] = r["output"].replace("\n", "  \n") + " "
    return r


def interleave(rng, base, plants):
    """plants: list of (src_pos, row). Copies of base[src_pos] land after a random base row in
    [src_pos, src_pos + 40]; rows with src_pos None (empty/junk) land anywhere."""
    slots = {}
    for lo, r in plants:
        if lo is None:
            pos = rng.randint(0, len(base) - 1)
        else:
            pos = rng.randint(lo, min(lo + 40, len(base) - 1))
        slots.setdefault(pos, []).append(r)
    out = []
    for i, r in enumerate(base):
        out.append(r)
        out.extend(slots.get(i, []))
    return out


def build_general(rng):
    base = build_general_base(rng)
    rng.shuffle(base)
    n = len(base)
    # Rows that must stay untouched by other plants.
    special = {i for i, r in enumerate(base) if "history" in r}
    nfd = next(i for i, r in enumerate(base) if r["output"].startswith("Coffee tastes best"))
    base[nfd]["output"] = base[nfd]["output"].replace("caf\u00e9", "cafe\u0301")
    special.add(nfd)
    pool = [i for i in range(int(n * 0.8)) if i not in special]
    rng.shuffle(pool)
    messy = pool[:4]
    for k, i in enumerate(messy):
        messy_ws(base[i], k)
    pool = pool[4:]
    exact, pool = pool[:6], pool[6:]
    casews, pool = pool[:3], pool[3:]
    plants, near_j = [], []
    for i in exact:
        plants.append((i, json.loads(json.dumps(base[i]))))
    for k, i in enumerate(casews):
        plants.append((i, case_ws_variant(base[i], k)))
    # Alternate long rows (which tolerate 2-3 swaps) with ordinary ones.
    long_ = [i for i in pool if len(shingles(text_of(base[i]))) >= 90]
    short = [i for i in pool if i not in long_]
    order = [x for pair in zip(long_, short) for x in pair]
    for i in order:
        if len(near_j) == 8:
            break
        res = near_duplicate(rng, base[i])
        if res:
            plants.append((i, res[0]))
            near_j.append((res[1], round(res[2], 3)))
    assert len(near_j) == 8
    for ins, out in EMPTY_GENERAL + JUNK_GENERAL:
        plants.append((None, row(ins, out)))
    rows = interleave(rng, base, plants)
    manifest = {"rows": len(rows), "exact_duplicates": 6, "case_whitespace_duplicates": 3,
                "near_duplicates": len(near_j), "near_duplicate_words_changed_and_jaccard": near_j,
                "empty_responses": len(EMPTY_GENERAL), "junk_responses": len(JUNK_GENERAL),
                "messy_whitespace": len(messy), "non_nfc": 1,
                "history_rows": sum("history" in r for r in rows)}
    return rows, manifest


def build_domain(rng):
    base = build_domain_base(rng)
    rng.shuffle(base)
    n = len(base)
    pool = [i for i in range(int(n * 0.8)) if len(base[i]["conversations"]) == 2]
    rng.shuffle(pool)
    exact, pool = pool[:3], pool[3:]
    plants, near_j = [], []
    for i in exact:
        plants.append((i, json.loads(json.dumps(base[i]))))
    for i in pool:
        if len(near_j) == 4:
            break
        res = near_duplicate(rng, base[i])
        if res:
            plants.append((i, res[0]))
            near_j.append((res[1], round(res[2], 3)))
    assert len(near_j) == 4
    for topic, q, a in EMPTY_DOMAIN:
        plants.append((None, conv(topic, [q, a])))
    rows = interleave(rng, base, plants)
    manifest = {"rows": len(rows), "exact_duplicates": 3, "near_duplicates": len(near_j),
                "near_duplicate_words_changed_and_jaccard": near_j,
                "empty_responses": len(EMPTY_DOMAIN),
                "system_turn_rows": sum(r["conversations"][0]["from"] == "system" for r in rows),
                "two_exchange_rows": sum(sum(t["from"] == "human" for t in r["conversations"]) == 2
                                         for r in rows)}
    return rows, manifest


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def verify(path, fmt):
    """Re-read a written file and independently recount the planted problems."""
    rows = [json.loads(line) for line in open(path, encoding="utf-8")]
    seen_exact, seen_norm = set(), set()
    stats = {"rows": len(rows), "exact_dup": 0, "case_ws_dup": 0, "empty": 0, "non_nfc": 0}
    for r in rows:
        key = json.dumps(r, sort_keys=True, ensure_ascii=False)
        norm = " ".join(text_of(r).lower().split())
        if key in seen_exact:
            stats["exact_dup"] += 1
        elif norm in seen_norm:
            stats["case_ws_dup"] += 1
        seen_exact.add(key)
        seen_norm.add(norm)
        if not get_resp(r).strip():
            stats["empty"] += 1
        if unicodedata.normalize("NFC", json.dumps(r, ensure_ascii=False)) != json.dumps(r, ensure_ascii=False):
            stats["non_nfc"] += 1
    # Near-duplicate pairs: 0.8 <= J < 1 on the whole user+assistant text.
    sh = [shingles(text_of(r)) for r in rows]
    near = []
    for i in range(len(rows)):
        for j in range(i):
            inter = len(sh[i] & sh[j])
            if inter:
                jac = inter / len(sh[i] | sh[j])
                if 0.8 <= jac < 1.0 and " ".join(text_of(rows[i]).lower().split()) != \
                        " ".join(text_of(rows[j]).lower().split()):
                    near.append(round(jac, 3))
    stats["near_dup_pairs"] = len(near)
    stats["near_dup_jaccard_min_max"] = (min(near), max(near)) if near else None
    if fmt == "alpaca":
        words = [len(r["output"].split()) for r in rows if r["output"].strip()]
        stats["history_rows"] = sum("history" in r for r in rows)
        stats["tab_or_double_space_or_trailing"] = sum(
            any("\t" in s or "  " in s or s != s.rstrip() for s in (r["instruction"], r["output"]))
            for r in rows)
    return stats


def main():
    rng = random.Random(0)
    gen, gman = build_general(rng)
    dom, dman = build_domain(rng)
    paths = (os.path.join(HERE, "quickstart_general.jsonl"), os.path.join(HERE, "quickstart_domain.jsonl"))
    write_jsonl(paths[0], gen)
    write_jsonl(paths[1], dom)
    for path, man, fmt in ((paths[0], gman, "alpaca"), (paths[1], dman, "sharegpt")):
        print(os.path.basename(path), "%d bytes" % os.path.getsize(path))
        print("  planted:", json.dumps(man))
        print("  verified:", json.dumps(verify(path, fmt)))


if __name__ == "__main__":
    main()
