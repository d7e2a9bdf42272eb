{#-
    Rows where `column_name` falls before `other_column` (nulls pass). On the feature marts:
    a label is never known before its as-of date, or it would leak into training.
-#}
{% test not_before(model, column_name, other_column) %}

select {{ column_name }}, {{ other_column }}
from {{ model }}
where {{ column_name }} < {{ other_column }}

{% endtest %}
