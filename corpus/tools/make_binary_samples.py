#!/usr/bin/env python3
"""Generate the binary sample documents of the doctrina sample corpus.

SAMPLE DATA: everything this script writes is fictional test data for the
doctrina project. It is not real doctrine.

Outputs (written to corpus/documents/, the folder that holds the documents
doctrina indexes; it is created if missing):

  fm-5-0-1.pdf              FM 5-0.1 "The Military Decision-Making Process: A Staff
                            Handbook" -- 8 pages, real text layer, running header
                            ("FM 5-0.1" left, date right) and page-number footer on
                            every page, chapters and 1-1.-style numbered paragraphs,
                            some of which continue across a page break.
  fm-5-0-1.pdf.meta.yaml    metadata sidecar (same keys as Markdown front matter)
  atp-5-0-7.docx            ATP 5-0.7 "Mission Analysis and Course of Action
                            Development" -- Word built-in Title / Heading 1 / Heading 2
                            styles, numbered paragraphs (2-3. ...) as Normal
                            paragraphs, one table, one bullet list (List Bullet).
  atp-5-0-7.docx.meta.yaml  metadata sidecar

How to run (nothing is installed system-wide):

    python3 -m venv /tmp/corpusvenv
    /tmp/corpusvenv/bin/pip install fpdf2 python-docx      # tested: fpdf2 2.8.9, python-docx 1.2.0
    /tmp/corpusvenv/bin/python corpus/tools/make_binary_samples.py

Optional check of the PDF text layer:

    /tmp/corpusvenv/bin/pip install pypdf
    /tmp/corpusvenv/bin/python -c "import pypdf; print(pypdf.PdfReader('corpus/documents/fm-5-0-1.pdf').pages[1].extract_text())"

Fonts: the PDF embeds DejaVu Serif / DejaVu Sans (Debian/Ubuntu package
fonts-dejavu-core, /usr/share/fonts/truetype/dejavu) so that the em dash and the
bullet glyph are real Unicode characters in the text layer. If DejaVu is not
found, the script falls back to the PDF core fonts and replaces those two
characters with ASCII ("--" and "-"); the generated text then differs slightly
from the committed file.

The output is deterministic apart from the PDF/DOCX creation timestamps, which
are pinned to the edition date below.

The document content is also importable (FM_5_0_1, ATP_5_0_7, META) so that
tools such as validate_corpus.py can read the exact paragraph text.
"""

from __future__ import annotations

import datetime as _dt
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.dirname(HERE)
DOCUMENTS = os.path.join(CORPUS, "documents")  # the files doctrina indexes

# ---------------------------------------------------------------------------
# Metadata (written to the .meta.yaml sidecars)
# ---------------------------------------------------------------------------

META = {
    "fm-5-0-1.pdf": {
        "id": "fm-5-0-1",
        "title": "The Military Decision-Making Process: A Staff Handbook",
        "publication": "FM 5-0.1",
        "edition": "2023-09-12",
        "marking": "UNCLASSIFIED",
        "caveats": [],
    },
    "atp-5-0-7.docx": {
        "id": "atp-5-0-7",
        "title": "Mission Analysis and Course of Action Development: A Planning Handbook",
        "publication": "ATP 5-0.7",
        "edition": "2024-04-08",
        "marking": "UNCLASSIFIED",
        "caveats": [],
    },
}

# ---------------------------------------------------------------------------
# Content. Block types:
#   ("chapter", "1", "Title")          -> new page (PDF) / Heading 1 (DOCX)
#   ("section", "Section I — Title")   -> Heading 2
#   ("sub", "Title")                   -> Heading 3 (bold run-in heading in the PDF)
#   ("para", "1-1", "text")            -> numbered paragraph "1-1. text"
#   ("bullets", [..])                  -> bullet list (belongs to preceding paragraph)
#   ("note", "text")                   -> "NOTE: text"
#   ("table", caption, header, rows)
#   ("figure", caption, [ascii lines])
# ---------------------------------------------------------------------------

SAMPLE_NOTICE = (
    "SAMPLE DATA — written for the doctrina project. This is NOT real doctrine. "
    "The publication number and all content are fictional."
)

FM_5_0_1 = [
    ("chapter", "1", "Overview of the Military Decision-Making Process"),
    ("section", "Section I — Purpose and Description"),
    ("para", "1-1",
     "This handbook explains the military decision-making process (MDMP) for brigade and battalion "
     "staffs. It complements the doctrine on planning by offering practical techniques, timelines, and "
     "checklists drawn from training-center experience. It is intended for staff officers who are new "
     "to planning at these echelons and for executive officers who must train their staffs to plan "
     "quickly and well under pressure."),
    ("para", "1-2",
     "The MDMP is an iterative planning methodology that integrates the activities of the commander, "
     "staff, subordinate headquarters, and other partners to understand the situation and mission, "
     "develop and compare courses of action, decide on the course of action that best accomplishes the "
     "mission, and produce an order for execution. It is analytical and deliberate by design. Its value "
     "lies in disciplined thinking: it forces the staff to examine facts, test assumptions, and consider "
     "alternatives before committing the unit."),
    ("para", "1-3",
     "The MDMP consists of seven steps. Each step has inputs that come from the previous step and "
     "outputs that feed the next one, so skipping a step usually means that its work is done later, "
     "poorly, and under greater time pressure. The seven steps are:"),
    ("bullets", [
        "Step 1 — receipt of mission.",
        "Step 2 — mission analysis.",
        "Step 3 — course of action (COA) development.",
        "Step 4 — COA analysis (war game).",
        "Step 5 — COA comparison.",
        "Step 6 — COA approval.",
        "Step 7 — orders production, dissemination, and transition.",
    ]),
    ("table", "Table 1-1. MDMP steps and principal outputs",
     ["Step", "Principal outputs"],
     [
         ["1. Receipt of mission", "Commander's initial guidance; initial allocation of time; WARNO 1"],
         ["2. Mission analysis", "Problem statement; restated mission; initial intent and planning guidance; initial CCIR; WARNO 2"],
         ["3. COA development", "COA statements and sketches; updated running estimates"],
         ["4. COA analysis", "Refined COAs; synchronization matrix; decision support template; risk assessment"],
         ["5. COA comparison", "Evaluated COAs; recommended COA"],
         ["6. COA approval", "Approved COA; final planning guidance; WARNO 3"],
         ["7. Orders production", "Approved order; confirmation briefs; transition brief"],
     ]),
    ("section", "Section II — Roles and Time"),
    ("para", "1-4",
     "The commander drives the MDMP. The commander's role is summarized in the activities of "
     "understanding, visualizing, describing, directing, leading, and assessing. In practice this means "
     "that the commander is present at the key decision points of the process, issues guidance that "
     "narrows the staff's work, and makes timely decisions. A staff that plans without regular commander "
     "involvement frequently produces courses of action that the commander rejects at the approval "
     "briefing, wasting much of the time available."),
    ("para", "1-5",
     "The chief of staff or executive officer manages the process. This officer sets and enforces the "
     "planning timeline, assigns responsibilities, ensures that staff sections share information, and "
     "decides when a product is good enough to move forward. The executive officer also protects the "
     "staff from distractions, such as unnecessary briefings, that consume time without advancing the "
     "plan."),
    ("para", "1-6",
     "Time is the planner's most precious resource. Units apply the one-third, two-thirds rule: the "
     "headquarters uses no more than one-third of the available planning time and leaves at least "
     "two-thirds to subordinate units for their own planning and preparation. The rule is measured from "
     "receipt of mission to the time subordinate units must execute, and the executive officer builds the "
     "planning timeline backward from that time."),
    ("para", "1-7",
     "Parallel planning is two or more echelons planning for the same operation nearly simultaneously. "
     "It depends on the higher headquarters sharing information early and often, mainly through warning "
     "orders. Collaborative planning is the real-time interaction among commanders and staffs at two or "
     "more echelons, usually through meetings, video teleconferences, or shared data. Both techniques "
     "shorten the overall planning time; neither removes the need for a complete order at the end."),
    ("section", "Section III — Planning in a Time-Constrained Environment"),
    ("para", "1-8",
     "When time is short, the commander may abbreviate the MDMP. The steps remain the same, but they are "
     "performed less formally and often in a compressed sequence. Common techniques include increasing "
     "the commander's direct involvement, issuing more directive planning guidance, limiting the number "
     "of courses of action developed, sometimes to only one, and relying on the unit SOP to cover routine "
     "matters rather than restating them in the order."),
    ("para", "1-9",
     "The most significant risk of an abbreviated MDMP is that the staff fails to identify a critical "
     "fact, assumption, or enemy capability because it skipped the analysis that would have revealed it. "
     "Commanders mitigate this risk by keeping mission analysis as complete as time allows, since errors "
     "in mission analysis propagate through every later step, and by accepting less refinement in course "
     "of action analysis instead."),
    ("note",
     "Abbreviating the MDMP is a decision of the commander, not of the staff. Staffs that routinely "
     "abbreviate the process on their own initiative lose the practice they need to plan deliberately "
     "when time does allow."),

    ("chapter", "2", "Receipt of Mission Through Course of Action Approval"),
    ("section", "Section I — Receipt of Mission and Mission Analysis"),
    ("para", "2-1",
     "Receipt of mission begins when the unit receives a new order or anticipates a new mission. The "
     "staff is alerted, the planning team gathers the higher headquarters order, maps, the unit SOP, and "
     "current running estimates, and the commander and staff conduct a quick initial assessment. The "
     "principal outputs are the commander's initial guidance, an initial allocation of available time, "
     "and the first warning order, which should reach subordinate units within about one hour of receipt "
     "of mission."),
    ("para", "2-2",
     "Mission analysis is the step in which the staff develops a thorough understanding of the situation "
     "and the problem. It is the most important step of the MDMP, because every later step depends on its "
     "products. The staff analyzes the higher headquarters plan, conducts intelligence preparation of the "
     "battlefield, determines specified, implied, and essential tasks, reviews available assets, "
     "identifies constraints, identifies critical facts and assumptions, begins risk management, and "
     "develops initial information requirements."),
    ("para", "2-3",
     "The key outputs of mission analysis are presented in the mission analysis briefing. They include "
     "the problem statement, the proposed restated mission, the initial commander's critical information "
     "requirements, the initial intelligence collection plan, and an updated planning timeline. After the "
     "briefing the commander approves the restated mission, develops an initial commander's intent, "
     "issues planning guidance, and directs the release of the second warning order."),
    ("para", "2-4",
     "The restated mission states who will conduct the operation, what task they will perform, when, "
     "where, and why. The task is normally a tactical task such as seize, defeat, or secure, and the "
     "purpose, introduced by the words \"in order to\", explains why the task matters to the higher "
     "headquarters. A well-written restated mission is a single sentence that every subordinate leader can "
     "remember; it is not a list of tasks."),
    ("para", "2-5",
     "Planning guidance is the commander's direction to the staff on how to develop courses of action. It "
     "may address the commander's visualization of the operation, the decisive point, the courses of "
     "action to consider or not to consider, the acceptable level of risk, and specific guidance by "
     "warfighting function. The more specific the guidance, the faster the staff can work; the less "
     "specific, the more options the staff can explore."),
    ("section", "Section II — Course of Action Development"),
    ("para", "2-6",
     "A course of action is a broad potential solution to the problem identified in mission analysis. "
     "Each course of action the staff develops must meet five screening criteria. It must be feasible, "
     "meaning the unit can accomplish it with the available resources and time; acceptable, meaning the "
     "advantages justify the cost; suitable, meaning it solves the problem and complies with guidance; "
     "distinguishable, meaning it differs significantly from the other courses of action; and complete, "
     "meaning it covers the operation from start to end state."),
    ("para", "2-7",
     "To develop a course of action, the staff assesses relative combat power, generates options, arrays "
     "forces, develops a broad concept, assigns headquarters, and prepares a course of action statement "
     "and sketch. The concept describes the decisive operation, shaping operations, and sustaining "
     "operations, and it identifies the main effort. The sketch shows unit boundaries, objectives, phase "
     "lines, and the positions of friendly and enemy forces at critical times."),
    ("section", "Section III — Analysis, Comparison, and Approval"),
    ("para", "2-8",
     "Course of action analysis, commonly called the war game, is a disciplined process that lets the "
     "staff visualize the flow of the operation. For each course of action, the staff plays a series of "
     "action, reaction, and counteraction cycles against the most likely and the most dangerous enemy "
     "courses of action. The war game identifies strengths and weaknesses, refines the course of action, "
     "determines the need for branches and sequels, identifies decision points, and produces the "
     "synchronization matrix and the decision support template."),
    ("para", "2-9",
     "The staff chooses a war-gaming method that fits the terrain and the time available. The belt method "
     "divides the area of operations into belts across its width and suits operations that move through "
     "successive areas. The avenue-in-depth method examines one avenue of approach at a time and suits "
     "operations along a single axis. The box method focuses on a critical area, such as an objective or "
     "a breach site, and is the fastest method when time is short."),
    ("para", "2-10",
     "The war game follows a few simple rules. Participants remain unbiased and do not become emotionally "
     "attached to a course of action; they record advantages and disadvantages as they appear; they "
     "continually assess feasibility, acceptability, and suitability; they avoid drawing premature "
     "conclusions; and they compare courses of action only during the comparison step, not during the war "
     "game itself. The recorder captures results on a war-game worksheet or directly in the "
     "synchronization matrix."),
    ("para", "2-11",
     "During course of action comparison, the staff evaluates each course of action against evaluation "
     "criteria established during mission analysis or in the commander's guidance. A decision matrix is a "
     "common tool: each criterion may be weighted by importance, each course of action is ranked against "
     "each criterion, and the weighted ranks are totaled. The numbers support judgment but do not replace "
     "it, and the staff presents the reasons behind the scores along with the totals."),
    ("table", "Table 2-1. Sample weighted decision matrix (rank 1 is best; lower total is better)",
     ["Criterion (weight)", "COA 1 rank (weighted)", "COA 2 rank (weighted)"],
     [
         ["Simplicity (1)", "1 (1)", "2 (2)"],
         ["Speed to objective (2)", "2 (4)", "1 (2)"],
         ["Risk to force (2)", "1 (2)", "2 (4)"],
         ["Sustainability (1)", "1 (1)", "2 (2)"],
         ["Weighted total", "8", "10"],
     ]),
    ("para", "2-12",
     "In course of action approval, the staff briefs the commander on the results of the comparison and "
     "recommends a course of action. The commander may approve the recommended course of action, modify "
     "it, select a different one, or direct further work. The commander then issues final planning "
     "guidance, including refined intent, commander's critical information requirements, risk acceptance, "
     "and priorities, and the staff issues the third warning order so that subordinate units can begin "
     "detailed planning."),

    ("chapter", "3", "Orders Production, Dissemination, and Transition"),
    ("section", "Section I — Orders Production"),
    ("para", "3-1",
     "In the final step, the staff prepares the order by turning the approved course of action into a "
     "clear, concise concept of operations, scheme of maneuver, and scheme of fires, and by completing the "
     "annexes. The order is written in the five-paragraph format: situation, mission, execution, "
     "sustainment, and command and signal. Each paragraph contains only what subordinates need to know; "
     "routine matters are covered by reference to the unit SOP."),
    ("para", "3-2",
     "Before the commander approves the order, the staff conducts a reconciliation and a crosswalk. "
     "Reconciliation is an internal review of the order to ensure that the base order and all annexes "
     "agree with each other, for example that the sustainment annex supports the task organization. A "
     "crosswalk compares the order with the higher headquarters order to ensure that it fits the higher "
     "commander's intent and concept. Both reviews catch errors that are expensive to correct once "
     "subordinates have begun their own planning."),
    ("para", "3-3",
     "The order is disseminated by the fastest means that still ensures understanding. Where possible, "
     "the commander briefs the order in person to subordinate commanders using a terrain model or digital "
     "display. Immediately afterward, each subordinate commander gives a confirmation brief, restating the "
     "higher commander's intent, the unit's own tasks and purpose, and how the unit's mission supports the "
     "operation. Misunderstandings revealed in the confirmation brief are corrected before the leaders "
     "depart."),
    ("section", "Section II — Transition and Rehearsals"),
    ("para", "3-4",
     "Transition is the handover of the plan from the planners who developed it to the current operations "
     "cell that will execute it. A transition brief covers the order, the decision support template and "
     "matrix, the synchronization matrix, the assumptions that remain unconfirmed, and the branches and "
     "sequels. Ideally at least one planner remains with the current operations cell through the early "
     "stages of execution to answer questions about the intent behind the plan."),
    ("para", "3-5",
     "A back-brief is a briefing by subordinates to the commander that explains how they intend to "
     "accomplish their mission. It takes place after subordinates have completed their own planning, and "
     "it allows the higher commander to identify problems in a subordinate's concept and to check that "
     "subordinate plans are synchronized with one another. Back-briefs may be combined with rehearsals "
     "when time is limited."),
    ("para", "3-6",
     "Rehearsals allow leaders and Soldiers to practice key parts of the plan before execution. Common "
     "types are the back-brief, the combined arms rehearsal, the support rehearsal, and the battle drill "
     "or SOP rehearsal. The technique chosen depends on the time, security, and terrain available:"),
    ("bullets", [
        "full-dress rehearsal — all participants and equipment on terrain similar to the objective;",
        "reduced-force rehearsal — leaders only, on similar terrain;",
        "terrain-model rehearsal — a scaled model of the area of operations;",
        "digital terrain-model rehearsal — a computer-generated display;",
        "sketch-map rehearsal — a map drawn on the ground or on a board;",
        "map rehearsal — the operation walked through on a map;",
        "network rehearsal — participants rehearse over communications networks from dispersed locations.",
    ]),
    ("para", "3-7",
     "The combined arms rehearsal is normally the most important rehearsal at brigade level. It is "
     "conducted after subordinate units have issued their own orders, and it synchronizes the actions of "
     "all warfighting functions against the enemy's expected actions, phase by phase. The executive "
     "officer or operations officer directs the rehearsal using a script and a clock, and a recorder "
     "captures every change to the plan, which is published as a fragmentary order soon after the "
     "rehearsal."),
    ("para", "3-8",
     "Planning for assessment is completed during orders production. The staff identifies measures of "
     "performance, which show whether the unit is executing tasks as planned, and measures of "
     "effectiveness, which show whether those tasks are producing the desired conditions. Each measure has "
     "a source of data, a collection responsibility, and a threshold that would cause the staff to "
     "recommend a change to the plan."),
    ("figure", "Figure 3-1. Transition from the plans cell to the current operations cell",
     ["PLANS CELL                     TRANSITION BRIEF               CURRENT OPERATIONS",
      "approved order      ------>   order, DST/DSM, sync matrix ------>  execute, adjust,",
      "branches, sequels             open assumptions, planner LNO       assess"]),
]

ATP_5_0_7 = [
    ("chapter", "1", "Mission Analysis Techniques"),
    ("section", "Section I — Analyzing the Higher Headquarters Order"),
    ("para", "1-1",
     "This handbook offers practical techniques for the two planning steps that staffs find most "
     "demanding: mission analysis and course of action development. It is written for battalion and "
     "brigade planners and is a companion to FM 5-0.1, which describes the military decision-making "
     "process as a whole. The examples use a notional brigade attacking to seize river crossing sites."),
    ("para", "1-2",
     "Analysis of the higher headquarters order begins with the intent of the commanders one and two "
     "levels up. Planners identify the higher commander's mission, intent, concept of operations, "
     "available assets, constraints, and timeline, and then locate their own unit's task and purpose "
     "within the concept. The unit's purpose should be nested within the higher headquarters' purpose; if "
     "planners cannot explain how their task supports the higher mission, they ask the higher "
     "headquarters before going further."),
    ("sub", "Specified, implied, and essential tasks"),
    ("para", "1-3",
     "Planners sort tasks into three categories. Specified tasks are assigned explicitly to the unit in "
     "the order, its annexes, or by the commander. Implied tasks must be performed to accomplish a "
     "specified task or the mission but are not stated in the order. Essential tasks are the specified or "
     "implied tasks that must be executed to accomplish the mission, and they become the task in the "
     "restated mission. Routine activities already covered by the unit SOP are not listed as implied "
     "tasks."),
    ("table", "Table 1-1. Task categories with examples from a river-crossing mission",
     ["Category", "Source", "Example"],
     [
         ["Specified", "Stated in the order or by the commander", "Seize crossing sites at Rusk"],
         ["Implied", "Derived by analysis; not stated", "Breach obstacles on the far bank; establish crossing area control"],
         ["Essential", "Specified or implied task required for mission success", "Seize crossing sites at Rusk (becomes the task in the restated mission)"],
     ]),
    ("para", "1-4",
     "A reliable technique for finding implied tasks is to ask, for each specified task, what must be "
     "true for that task to succeed. For a specified task to seize a crossing site, the answers might "
     "include breaching obstacles on the far bank, establishing crossing area control, obtaining bridging "
     "assets, and suppressing enemy observation of the site. Each answer that is not already covered by "
     "the SOP or by another unit's task is recorded as an implied task."),
    ("sub", "Constraints"),
    ("para", "1-5",
     "A constraint is a restriction placed on the command by a higher command. Constraints take two "
     "forms: a requirement for action, which dictates something the unit must do, and a prohibition on "
     "action, which forbids something the unit would otherwise be free to do. \"No fires on the Rusk "
     "bridge without division approval\" is a prohibition. Constraints are found in the higher order's "
     "coordinating instructions, its fire support annex, the rules of engagement, and the commander's "
     "guidance."),
    ("section", "Section II — Facts, Assumptions, and the Problem Statement"),
    ("para", "1-6",
     "Planners keep facts and assumptions separate and keep the list of assumptions short. An assumption "
     "is acceptable only if it is valid, meaning it is likely to be true, and necessary, meaning planning "
     "cannot continue without it. Every assumption is paired with an information requirement intended to "
     "confirm or disprove it, and it is replaced by a fact as soon as possible. Assumptions that remain "
     "unconfirmed at the time of execution are briefed as risks."),
    ("para", "1-7",
     "The problem statement describes the issue the plan must solve. It identifies the tension between "
     "the current conditions and the desired end state, including the enemy, terrain, and time factors "
     "that make the mission difficult. A useful problem statement for the notional brigade might read: "
     "how does the brigade establish a bridgehead large enough to pass a brigade before the enemy reserve "
     "can counterattack, without damaging the Rusk bridge?"),
    ("para", "1-8",
     "Initial commander's critical information requirements consist of priority intelligence "
     "requirements, which concern the enemy and the environment, and friendly force information "
     "requirements, which concern friendly forces and supporting capabilities. Each requirement is linked "
     "to a decision the commander expects to make. Planners keep the list short, normally no more than ten "
     "requirements, because a long list dilutes collection effort and reporting discipline. Essential "
     "elements of friendly information, which identify information to protect from the enemy, are "
     "developed separately."),
    ("para", "1-9",
     "The mission analysis briefing gives the commander the information needed to approve the restated "
     "mission and issue guidance. It is a decision briefing, not an information dump, and it should "
     "follow a standard agenda:"),
    ("bullets", [
        "higher headquarters mission, intent, and concept;",
        "intelligence preparation of the battlefield products, including terrain, weather, and threat courses of action;",
        "specified, implied, and essential tasks;",
        "constraints, facts, and assumptions;",
        "available forces, shortfalls, and the initial risk assessment;",
        "proposed problem statement and restated mission;",
        "proposed commander's critical information requirements and the initial collection plan;",
        "updated planning timeline and recommended course of action evaluation criteria.",
    ]),

    ("chapter", "2", "Course of Action Development"),
    ("section", "Section I — Relative Combat Power and Options"),
    ("para", "2-1",
     "Course of action development begins with an assessment of relative combat power. Planners compare "
     "friendly and enemy tangible factors, such as numbers of units and weapon systems, with intangible "
     "factors, such as training, morale, leadership, and the advantage of the defender. The purpose is not "
     "to calculate a single ratio but to find where and when friendly strengths can be applied against "
     "enemy weaknesses, and where the enemy could do the same to the friendly force."),
    ("sub", "Force ratios"),
    ("para", "2-2",
     "Historical minimum planning ratios give a rough screen for whether a task is feasible. As a guide, "
     "an attack against a prepared defense needs about three attackers for each defender, an attack "
     "against a hasty defense about two and a half to one, a defense of prepared positions can hold "
     "against about three attackers for each defender, a delay can be conducted at about one to six, and a "
     "counterattack into an enemy flank can succeed at about one to one. Planners treat these ratios as "
     "screens, not predictions."),
    ("para", "2-3",
     "Planners generate options by starting from the decisive point, the place or event that will give "
     "the unit a marked advantage, and then determining the decisive operation that achieves it. Shaping "
     "and sustaining operations are added to set conditions for and support the decisive operation. The "
     "staff develops at least two distinguishable courses of action unless the commander directs "
     "otherwise, and it discards options that fail the screening criteria before investing further "
     "effort."),
    ("para", "2-4",
     "To array forces, planners determine the forces needed at the decisive point and in each shaping "
     "operation, working with units two levels down; a brigade staff therefore arrays companies, not "
     "battalions. The arrayed requirement is then compared with the forces available. Shortfalls are "
     "either resolved by changing the course of action, accepted as risk, or identified as requests for "
     "additional forces to the higher headquarters."),
    ("section", "Section II — The Broad Concept, Statement, and Sketch"),
    ("para", "2-5",
     "The broad concept describes how the arrayed forces will accomplish the mission. It identifies the "
     "decisive, shaping, and sustaining operations, the main effort, the phasing of the operation, the "
     "principal control measures, the use of the reserve, and the outline of the sustainment concept. The "
     "main effort is the unit whose task is most critical to success at a given time; it receives "
     "priority of support, and the main effort may shift from one unit to another between phases."),
    ("para", "2-6",
     "After the broad concept is developed, planners assign headquarters to the groupings of arrayed "
     "forces. A headquarters can effectively control between two and five subordinate units, depending on "
     "the complexity of the task and the experience of its staff. Where a grouping exceeds that span of "
     "control, planners either create an additional task force headquarters or simplify the task."),
    ("sub", "Course of action statement and sketch"),
    ("para", "2-7",
     "Each course of action is expressed as a statement and a sketch. The statement describes, in a few "
     "sentences, how the unit will accomplish the mission from start to end state, including the "
     "decisive operation and the main effort. The sketch shows boundaries, objectives, phase lines, "
     "assembly areas, the positions of friendly units, and the expected enemy array. The statement and "
     "sketch together must be enough for the commander to understand the course of action without "
     "further explanation."),
    ("figure", "Figure 2-1. Sample course of action sketch (schematic)",
     ["  PL AMBER        PL COPPER         OBJ BRASS",
      "     |   1-9 CAV -> Hill 312  |         [ X1 ]",
      "     |   1-45 IN ===========> | =====> [ X1 ]   (main effort)",
      "     |   2-45 IN ===> fix at  | bridge [ X2 ]"]),
    ("para", "2-8",
     "The course of action briefing presents each course of action to the commander for approval before "
     "analysis. The commander may approve the courses of action for war-gaming, modify them, or direct "
     "the staff to develop new ones. Developing more courses of action than the staff has time to "
     "war-game is wasted effort; the executive officer limits the number of courses of action to what the "
     "timeline allows, usually two or three at brigade level."),
    ("para", "2-9",
     "Several errors recur in course of action development. Courses of action that differ only in which "
     "battalion leads are not distinguishable. Courses of action built on the most favorable enemy "
     "reaction collapse during the war game. Courses of action that ignore sustainment often prove "
     "infeasible once fuel and ammunition are calculated. And courses of action that assign the main "
     "effort to a unit without the combat power to accomplish the task fail the feasibility test that "
     "planners should have applied at the start."),
    ("note",
     "The sustainment, fires, and protection planners participate in course of action development from "
     "the start. Bringing them in only for the war game means that the courses of action have already "
     "been shaped without their constraints."),
]

DOCS = {"fm-5-0-1.pdf": FM_5_0_1, "atp-5-0-7.docx": ATP_5_0_7}


def meta_yaml(meta: dict) -> str:
    lines = [
        "# Metadata sidecar for a binary sample document (SAMPLE DATA for doctrina; fictional).",
        "# Generated by tools/make_binary_samples.py -- edit META there, not here.",
    ]
    for key in ("id", "title", "publication", "edition", "marking", "caveats"):
        val = meta[key]
        if isinstance(val, list):
            val = "[" + ", ".join('"%s"' % v for v in val) + "]"
        elif any(ch in val for ch in ":#[]{},&*!|>'\"%@`"):
            val = '"%s"' % val.replace("\\", "\\\\").replace('"', '\\"')
        lines.append("%s: %s" % (key, val))
    return "\n".join(lines) + "\n"


def human_date(iso: str) -> str:
    d = _dt.date.fromisoformat(iso)
    return "%d %s %d" % (d.day, d.strftime("%B"), d.year)


# ---------------------------------------------------------------------------
# PDF
# ---------------------------------------------------------------------------

def build_pdf(path: str, blocks, meta: dict) -> None:
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    font_dir = "/usr/share/fonts/truetype/dejavu"
    have_dejavu = os.path.exists(os.path.join(font_dir, "DejaVuSerif.ttf"))

    def t(s: str) -> str:
        return s if have_dejavu else s.replace("—", "--").replace("•", "-")

    pub = meta["publication"]
    date = human_date(meta["edition"])

    class Doc(FPDF):
        def header(self):
            self.set_font(SANS, "", 8.5)
            self.set_y(10)
            self.cell(0, 5, pub, align="L")
            self.set_x(self.l_margin)
            self.cell(0, 5, date, align="R")
            self.set_draw_color(90, 90, 90)
            self.line(self.l_margin, 16, self.w - self.r_margin, 16)
            self.set_y(22)

        def footer(self):
            self.set_y(-15)
            self.set_font(SANS, "", 8.5)
            self.cell(0, 5, t("SAMPLE DATA — not real doctrine"), align="L")
            self.set_x(self.l_margin)
            self.cell(0, 5, str(self.page_no()), align="R")

    pdf = Doc(format="Letter", unit="mm")
    if have_dejavu:
        pdf.add_font("Serif", "", os.path.join(font_dir, "DejaVuSerif.ttf"))
        pdf.add_font("Serif", "B", os.path.join(font_dir, "DejaVuSerif-Bold.ttf"))
        pdf.add_font("Serif", "I", os.path.join(font_dir, "DejaVuSerif-Italic.ttf"))
        pdf.add_font("Sans", "", os.path.join(font_dir, "DejaVuSans.ttf"))
        pdf.add_font("Sans", "B", os.path.join(font_dir, "DejaVuSans-Bold.ttf"))
        pdf.add_font("Mono", "", os.path.join(font_dir, "DejaVuSansMono.ttf"))
        SERIF, SANS, MONO = "Serif", "Sans", "Mono"
    else:
        SERIF, SANS, MONO = "Times", "Helvetica", "Courier"

    pdf.set_title("%s %s (SAMPLE DATA)" % (pub, meta["title"]))
    pdf.set_author("doctrina sample corpus (fictional)")
    pdf.set_subject("SAMPLE DATA written for doctrina - not real doctrine")
    pdf.set_keywords("doctrina sample MDMP fictional")
    pdf.set_creation_date(_dt.datetime.fromisoformat(meta["edition"] + "T00:00:00+00:00"))
    pdf.set_margins(25, 22, 25)
    pdf.set_auto_page_break(True, margin=22)

    # Title page
    pdf.add_page()
    pdf.ln(40)
    pdf.set_font(SANS, "B", 22)
    pdf.cell(0, 12, pub, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font(SANS, "B", 16)
    pdf.multi_cell(0, 9, t(meta["title"]), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font(SERIF, "", 12)
    pdf.cell(0, 8, date, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(20)
    pdf.set_font(SERIF, "I", 10.5)
    pdf.multi_cell(0, 6, t(SAMPLE_NOTICE), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pdf.set_font(SERIF, "", 9.5)
    pdf.multi_cell(0, 5.5, "Sample distribution statement: approved for use as test data in the doctrina "
                   "project only. Not for operational use.", align="C", new_x="LMARGIN", new_y="NEXT")

    body_size, lh = 10.2, 5.2
    for b in blocks:
        kind = b[0]
        if kind == "chapter":
            pdf.add_page()
            pdf.set_font(SANS, "B", 15)
            pdf.cell(0, 8, "Chapter %s" % b[1], align="C", new_x="LMARGIN", new_y="NEXT")
            pdf.cell(0, 8, b[2], align="C", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(4)
        elif kind == "section":
            if pdf.get_y() > pdf.h - pdf.b_margin - 30:  # keep a heading with its text
                pdf.add_page()
            pdf.ln(2)
            pdf.set_font(SANS, "B", 11.5)
            pdf.multi_cell(0, 6.5, t(b[1]), align="C", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1.5)
        elif kind == "sub":
            if pdf.get_y() > pdf.h - pdf.b_margin - 25:
                pdf.add_page()
            pdf.set_font(SANS, "B", 10.5)
            pdf.multi_cell(0, 6, t(b[1]), align="L", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(0.5)
        elif kind == "para":
            pdf.set_font(SERIF, "", body_size)
            pdf.multi_cell(0, lh, t("%s. %s" % (b[1], b[2])), align="J", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2.2)
        elif kind == "bullets":
            pdf.set_font(SERIF, "", body_size)
            for item in b[1]:
                pdf.set_x(pdf.l_margin + 6)
                pdf.multi_cell(pdf.epw - 6, lh, t("• " + item), align="L", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2.2)
        elif kind == "note":
            pdf.set_font(SERIF, "", body_size - 0.5)
            pdf.set_x(pdf.l_margin + 8)
            pdf.multi_cell(pdf.epw - 16, lh, t("NOTE: " + b[1]), align="J", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2.2)
        elif kind == "table":
            _, caption, header, rows = b
            if pdf.get_y() > pdf.h - pdf.b_margin - 25:  # keep a caption with its table
                pdf.add_page()
            pdf.ln(1)
            pdf.set_font(SANS, "B", 9.5)
            pdf.multi_cell(0, 5.5, t(caption), align="C", new_x="LMARGIN", new_y="NEXT")
            pdf.set_font(SERIF, "", 9)
            widths = (35, 65) if len(header) == 2 else (40, 30, 30)
            with pdf.table(col_widths=widths, line_height=4.8, text_align="LEFT",
                           headings_style=FontFace(emphasis="BOLD")) as table:
                for r in [header] + rows:
                    row = table.row()
                    for c in r:
                        row.cell(t(c))
            pdf.ln(3)
        elif kind == "figure":
            _, caption, art = b
            pdf.ln(1)
            pdf.set_font(MONO, "", 7.5)
            for line in art:
                pdf.cell(0, 4, t(line), new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1)
            pdf.set_font(SANS, "B", 9.5)
            pdf.multi_cell(0, 5.5, t(caption), align="C", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
        else:
            raise ValueError(kind)

    pdf.output(path)


# ---------------------------------------------------------------------------
# DOCX
# ---------------------------------------------------------------------------

def build_docx(path: str, blocks, meta: dict) -> None:
    import docx
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt

    d = docx.Document()
    cp = d.core_properties
    cp.title = "%s %s" % (meta["publication"], meta["title"])
    cp.subject = "SAMPLE DATA written for doctrina - not real doctrine"
    cp.author = "doctrina sample corpus (fictional)"
    cp.keywords = "doctrina; sample; mission analysis; course of action; fictional"
    cp.created = _dt.datetime.fromisoformat(meta["edition"] + "T00:00:00")
    cp.modified = cp.created
    cp.revision = 1

    sec = d.sections[0]
    hp = sec.header.paragraphs[0]
    hp.text = "%s\t\t%s" % (meta["publication"], human_date(meta["edition"]))
    sec.footer.paragraphs[0].text = "SAMPLE DATA — not real doctrine"

    d.add_heading("%s — %s" % (meta["publication"], meta["title"]), level=0)
    p = d.add_paragraph(human_date(meta["edition"]))
    p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    p = d.add_paragraph()
    r = p.add_run(SAMPLE_NOTICE)
    r.italic = True

    for b in blocks:
        kind = b[0]
        if kind == "chapter":
            d.add_heading("Chapter %s — %s" % (b[1], b[2]), level=1)
        elif kind == "section":
            d.add_heading(b[1], level=2)
        elif kind == "sub":
            d.add_heading(b[1], level=3)
        elif kind == "para":
            d.add_paragraph("%s. %s" % (b[1], b[2]), style="Normal")
        elif kind == "bullets":
            for item in b[1]:
                d.add_paragraph(item, style="List Bullet")
        elif kind == "note":
            p = d.add_paragraph()
            p.add_run("NOTE: ").bold = True
            p.add_run(b[1])
        elif kind == "table":
            _, caption, header, rows = b
            d.add_paragraph(caption, style="Caption")
            tbl = d.add_table(rows=1 + len(rows), cols=len(header))
            tbl.style = "Table Grid"
            for i, r_ in enumerate([header] + rows):
                for j, c in enumerate(r_):
                    tbl.cell(i, j).text = c
                    if i == 0:
                        for run in tbl.cell(i, j).paragraphs[0].runs:
                            run.bold = True
            d.add_paragraph()
        elif kind == "figure":
            _, caption, art = b
            for line in art:
                p = d.add_paragraph()
                run = p.add_run(line)
                run.font.name = "Courier New"
                run.font.size = Pt(8)
            d.add_paragraph(caption, style="Caption")
        else:
            raise ValueError(kind)
    d.save(path)


def main() -> int:
    os.makedirs(DOCUMENTS, exist_ok=True)
    for name, builder in (("fm-5-0-1.pdf", build_pdf), ("atp-5-0-7.docx", build_docx)):
        out = os.path.join(DOCUMENTS, name)
        builder(out, DOCS[name], META[name])
        with open(out + ".meta.yaml", "w", encoding="utf-8") as fh:
            fh.write(meta_yaml(META[name]))
        print("wrote", out, os.path.getsize(out), "bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
